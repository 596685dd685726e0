"""The orchestrator: the only module that knows the order of the steps.

load config + data -> validate -> for each pipeline (train -> evaluate -> log) -> select best
-> register -> compare with production -> promote -> record the decision.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow import champion as champion_step
from nlu_mlflow import constants as c
from nlu_mlflow import (
    critical,
    crossval,
    decision_record,
    fast_load,
    pipelines,
    plots,
    pyfunc_model,
    rasa_runtime,
    registry,
    remote,
    scoring,
    selection,
    tracking,
    training,
    validation,
)
from nlu_mlflow import data as nlu_data
from nlu_mlflow.decision_record import summary_table
from nlu_mlflow.errors import InputError
from nlu_mlflow.promotion import Decision, Scores, decide
from nlu_mlflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

__all__ = ["WorkflowSettings", "run", "prepare", "summary_table"]


@dataclass(frozen=True)
class Inputs:
    train: nlu_data.NluData
    test: nlu_data.NluData
    configs: list[pipelines.PipelineConfig]
    suite: critical.CriticalSuite | None
    overlap: list[str]

    @property
    def intent_support(self) -> dict[str, int]:
        return dict(Counter(m.get("intent") for m in self.test.examples))


@dataclass(frozen=True, eq=False)
class Candidate:
    name: str
    run_id: str
    model_uri: str
    extractors: list[str]
    scores: scoring.ModelScores
    train_seconds: float
    size_mb: float

    @property
    def metrics(self) -> dict[str, float]:
        return {
            **self.scores.metrics,
            c.TRAIN_SECONDS: self.train_seconds,
            c.MODEL_SIZE_MB: self.size_mb,
            c.EVAL_SECONDS: self.scores.evaluation.seconds,
        }


@dataclass(frozen=True, eq=False)
class Outcome:
    """What happened after selection: the registered version, the champion and the decision."""

    version: registry.Version | None = None
    champion: champion_step.ChampionScores | None = None
    decision: Decision | None = None
    promoted: bool = False
    message: str = ""


@dataclass(frozen=True, eq=False)
class WorkflowResult:
    run_id: str
    tracking_uri: str
    candidates: list[Candidate]
    selection: selection.Selection
    outcome: Outcome
    cross_validation: list[crossval.CVResult] = field(default_factory=list)  # --cv-folds runs only

    @property
    def best(self) -> Candidate | None:
        return next((x for x in self.candidates if x.name == self.selection.best), None)


def prepare(settings: WorkflowSettings, fetched: Path | None = None) -> Inputs:
    """Load and check every input; raises InputError before anything is trained or logged.

    ``fetched`` is the local copy of remote ``--data`` (see ``remote``).
    """
    configs = pipelines.load_all(settings.configs, settings.epochs, settings.seed)
    full = nlu_data.load_nlu(fetched or settings.data)
    if fetched is not None:
        full = dataclasses.replace(full, source=settings.remote_source().display)
    problems = validation.check_training_data(full, settings.min_examples, settings.allow_conflicts)
    if settings.test_data is not None:
        train, test = full, nlu_data.load_nlu(settings.test_data)
    else:
        train, test = nlu_data.split(full, settings.test_fraction, settings.seed)
    problems += validation.check_test_data(train, test)
    if settings.cv_folds:
        problems += crossval.fold_problems(train, settings.cv_folds)
    suite = None
    if settings.critical is not None:
        try:
            suite = critical.load_suite(settings.critical, {m.get("intent") for m in train.examples})
        except InputError as error:
            problems += error.problems
    if problems:
        raise InputError(problems)
    for warning in validation.case_conflicts(full) if not settings.allow_conflicts else []:
        logger.warning("%s", warning)
    overlap = nlu_data.overlapping_texts(train, test)
    if overlap:
        logger.warning(
            "%d test example(s) also occur in the training data (e.g. %r); their scores are optimistic.",
            len(overlap),
            overlap[0],
        )
    return Inputs(train, test, configs, suite, overlap)


def run(settings: WorkflowSettings) -> WorkflowResult:
    """Train, evaluate and log every pipeline, register the best, promote it if it wins."""
    source = settings.remote_source()
    inputs = None if source else prepare(settings)  # local input: checked before any run exists
    rasa_runtime.quiet_rasa()
    uri = tracking.configure(settings.tracking_uri, settings.experiment, settings.project_dir)
    env_tags = tracking.environment_tags(rasa_runtime.versions(), settings.project_dir)
    with (
        tempfile.TemporaryDirectory(prefix="nlu-mlflow-") as tmp,
        tracking.workflow_run("workflow", env_tags) as parent,
    ):
        work = Path(tmp)
        if inputs is None:
            inputs = _fetch_and_prepare(settings, source, work / "data")
        _log_workflow_inputs(settings, inputs)
        if settings.cv_folds:
            result = _cross_validate_all(settings, inputs, work, env_tags, parent.info.run_id, uri)
            decision_record.record_run(result, settings, inputs)
            return result
        train_yaml = inputs.train.to_yaml(work / "train.yml")
        # Rasa's load-time retraining is skipped when a model is loaded to be scored (fast_load.py);
        # Rasa's plots are drawn by a helper process while the next pipeline trains (plots.py)
        with fast_load.enabled(), plots.PlotHelper() as helper:
            candidates = []
            for i, config in enumerate(inputs.configs, start=1):
                logger.info("[%d/%d] %s: training", i, len(inputs.configs), config.name)
                candidates.append(
                    _run_candidate(config, inputs, settings, train_yaml, work / config.name, env_tags, helper)
                )
            chosen = selection.select_best({x.name: x.metrics for x in candidates}, settings.primary_metric)
            _log_selection(candidates, chosen)
            with helper.capture(parent.info.run_id, c.ARTIFACT_CHAMPION_REPORTS):
                outcome = _after_selection(settings, inputs, candidates, chosen, work / "champion")
        result = WorkflowResult(parent.info.run_id, uri, candidates, chosen, outcome)
        decision_record.record_run(result, settings, inputs)
    return result


def _fetch_and_prepare(settings: WorkflowSettings, source: remote.RemoteSource, work: Path) -> Inputs:
    """Remote data is fetched inside the parent run, so a failed fetch is on record as a FAILED run."""
    try:
        logger.info("fetching training data from %s", source.display)
        return prepare(settings, remote.fetch(source, work))
    except (remote.RemoteDataError, InputError) as error:
        tracking.set_tags({c.TAG_ERROR: str(error)[: c.MAX_TAG_LENGTH]})
        raise


def _run_candidate(
    config, inputs: Inputs, settings, train_yaml: Path, work: Path, env_tags, helper: plots.PlotHelper
) -> Candidate:
    with tracking.candidate_run(config.name, env_tags) as run:
        tracking.log_params(_candidate_params(config, inputs, settings))
        _log_datasets(inputs)
        trained = training.train(config, train_yaml, work)
        logger.info("  %s: trained in %.1f s; evaluating", config.name, trained.seconds)
        extractors = pipelines.entity_extractors(config)
        with helper.capture(run.info.run_id, c.ARTIFACT_REPORTS):
            scores = scoring.score_archive(
                trained.archive, inputs.test, inputs.suite, extractors, work / "reports"
            )
        tracking.log_artifacts(scores.evaluation.report_dir, c.ARTIFACT_REPORTS)
        tracking.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
        tracking.log_table(scores.evaluation.predictions, c.ARTIFACT_PREDICTIONS_TABLE)
        if scores.critical is not None:
            tracking.log_table(scores.critical.table, c.ARTIFACT_CRITICAL_TABLE)
        model_uri = pyfunc_model.log_model(trained.archive).model_uri
        candidate = Candidate(
            config.name, run.info.run_id, model_uri, extractors, scores, trained.seconds, trained.size_mb
        )
        tracking.log_metrics(candidate.metrics)
        logger.info(
            "  %s: %s = %.4f",
            config.name,
            settings.primary_metric,
            candidate.metrics.get(settings.primary_metric, 0),
        )
        return candidate


def _cross_validate_all(settings, inputs: Inputs, work: Path, env_tags, run_id: str, uri: str):
    """--cv-folds: one child run per config with cross-validated scores; nothing is registered."""
    results = []
    for i, config in enumerate(inputs.configs, start=1):
        logger.info(
            "[%d/%d] %s: %d-fold cross-validation", i, len(inputs.configs), config.name, settings.cv_folds
        )
        with tracking.candidate_run(config.name, env_tags):
            tracking.log_params(_candidate_params(config, inputs, settings))
            _log_datasets(inputs)
            cv = crossval.cross_validate(
                config, inputs.train, settings.cv_folds, settings.seed, inputs.suite, work / config.name
            )
            crossval.log_cv(cv)
            tracking.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
        results.append(cv)
    message = f"cross-validated {len(results)} pipeline(s) with {settings.cv_folds} folds; nothing registered"
    chosen = selection.Selection(None, {cv.name: "cross-validation run, not eligible" for cv in results})
    return WorkflowResult(run_id, uri, [], chosen, Outcome(message=message), results)


def _after_selection(settings, inputs: Inputs, candidates, chosen, work: Path) -> Outcome:
    best = next((x for x in candidates if x.name == chosen.best), None)
    if best is None:
        return Outcome(message="nothing registered: " + _why_none(chosen))
    if not settings.register:
        return Outcome(message=f"best candidate {best.name}; registration turned off (--no-register)")
    version = registry.register(best.model_uri, settings.model_name, _version_tags(best, inputs, settings))
    logger.info("registered %s version %s (%s)", settings.model_name, version.version, best.name)
    champion_step.cache(version, inputs.test, inputs.suite, best.metrics, best.scores.correct)
    holder = registry.alias_holder(settings.model_name)
    champ = None
    if holder is not None and holder.version != version.version:
        champ = champion_step.rescore(holder, inputs.test, inputs.suite, work)
    support = inputs.intent_support
    decision = decide(
        Scores(best.metrics, support, best.scores.correct),
        Scores(champ.metrics, support, champ.correct) if champ else None,
        settings.policy,
    )
    promoted = decision.promote and settings.promote
    if promoted:
        registry.move_production(settings.model_name, version.version)
    return Outcome(
        version,
        champ,
        decision,
        promoted,
        _outcome_message(settings, version, best, champ, decision, promoted),
    )


def _why_none(chosen: selection.Selection) -> str:
    return (
        "no candidate passes every critical utterance ("
        + "; ".join(f"{name} {why}" for name, why in sorted(chosen.reasons.items()))
        + ")"
    )


def _outcome_message(settings, version, best, champ, decision: Decision, promoted: bool) -> str:
    name = f"{settings.model_name} version {version.version} ({best.name})"
    if promoted:
        replaced = f", replacing version {champ.version.version}" if champ else ""
        return f"promoted {name} to production{replaced}"
    if decision.promote:
        return f"{name} would be promoted; promotion turned off (--no-promote)"
    kept = f"kept production version {champ.version.version}" if champ else "no production version"
    failed = "; ".join(x.reason for x in decision.failed)
    return f"{kept}; {name} not promoted: {failed}"


def _version_tags(best: Candidate, inputs: Inputs, settings: WorkflowSettings) -> dict[str, str]:
    metrics = best.metrics
    return {
        c.TAG_CONFIG: best.name,
        "source_run_id": best.run_id,
        "train_digest": inputs.train.digest,
        "test_digest": inputs.test.digest,
        "critical_digest": inputs.suite.digest if inputs.suite else "none",
        "primary_metric": settings.primary_metric,
        settings.primary_metric: f"{metrics.get(settings.primary_metric, float('nan')):.6f}",
        c.CRITICAL_PASS_RATE: f"{metrics.get(c.CRITICAL_PASS_RATE, float('nan')):.6f}",
        champion_step.TAG_EXTRACTORS: ",".join(best.extractors),
    }


def _candidate_params(config, inputs: Inputs, settings: WorkflowSettings) -> dict[str, object]:
    return {
        **pipelines.flatten(config),
        "config_file": config.path.name,
        "train_digest": inputs.train.digest,
        "test_digest": inputs.test.digest,
        "critical_digest": inputs.suite.digest if inputs.suite else None,
        "seed": settings.seed,
        "epochs_cap": settings.epochs,
    }


def _log_datasets(inputs: Inputs) -> None:
    tracking.log_dataset(
        inputs.train.to_frame(), inputs.train.source, "train", inputs.train.digest, "training"
    )
    tracking.log_dataset(inputs.test.to_frame(), inputs.test.source, "test", inputs.test.digest, "evaluation")


def _log_workflow_inputs(settings: WorkflowSettings, inputs: Inputs) -> None:
    tracking.log_params(
        {
            # names differ from the MLproject parameters, which `mlflow run` logs on this run already
            "data_source": inputs.train.source,
            "test_source": inputs.test.source,
            "test_fraction": None if settings.test_data else settings.test_fraction,
            "seed": settings.seed,
            "epochs_cap": settings.epochs,
            "config_names": ",".join(x.name for x in inputs.configs),
            "critical_suite": settings.critical,
            "critical_digest": inputs.suite.digest if inputs.suite else None,
            "model_name": settings.model_name,
            "train_digest": inputs.train.digest,
            "test_digest": inputs.test.digest,
            "train_examples": len(inputs.train.examples),
            "test_examples": len(inputs.test.examples),
            **{f"policy.{k}": v for k, v in settings.policy.to_dict().items()},
        }
    )
    _log_datasets(inputs)


def _log_selection(candidates: list[Candidate], chosen: selection.Selection) -> None:
    best = next((x for x in candidates if x.name == chosen.best), None)
    if best is not None:
        tracking.set_run_tags(best.run_id, {c.TAG_BEST: "true"})
        tracking.set_tags({c.TAG_BEST: best.name, "best_run_id": best.run_id})
        tracking.log_metrics({f"best_{k}": best.metrics[k] for k in c.KEY_METRICS if k in best.metrics})
    tracking.log_json({"best": chosen.best, "reasons": chosen.reasons}, "selection.json")
