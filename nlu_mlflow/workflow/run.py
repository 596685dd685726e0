"""The orchestrator: the only module that knows the order of the steps.

load config + data -> validate -> for each pipeline (train -> evaluate -> log) -> select best
-> register -> compare with production -> promote -> record the decision.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide import selection
from nlu_mlflow.decide.crossval import CVResult
from nlu_mlflow.decide.promotion import Decision, Scores, decide
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import fast_load, plots, runtime
from nlu_mlflow.tracking import registry, runs
from nlu_mlflow.workflow import champion as champion_step
from nlu_mlflow.workflow import crossval, record, remote
from nlu_mlflow.workflow.candidates import Candidate, candidate_params, log_datasets, run_candidate
from nlu_mlflow.workflow.inputs import Inputs, prepare
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

__all__ = ["WorkflowSettings", "run", "prepare", "summary_table"]


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
    cross_validation: list[CVResult] = field(default_factory=list)  # --cv-folds runs only

    @property
    def best(self) -> Candidate | None:
        return next((x for x in self.candidates if x.name == self.selection.best), None)


summary_table = record.summary_table


def run(settings: WorkflowSettings) -> WorkflowResult:
    """Train, evaluate and log every pipeline, register the best, promote it if it wins."""
    source = settings.remote_source()
    inputs = None if source else prepare(settings)  # local input: checked before any run exists
    runtime.quiet_rasa()
    uri = runs.configure(settings.tracking_uri, settings.experiment, settings.project_dir)
    env_tags = runs.environment_tags(runtime.versions(), settings.project_dir)
    with (
        tempfile.TemporaryDirectory(prefix="nlu-mlflow-") as tmp,
        runs.workflow_run("workflow", env_tags) as parent,
    ):
        work = Path(tmp)
        if inputs is None:
            inputs = _fetch_and_prepare(settings, source, work / "data")
        _log_workflow_inputs(settings, inputs)
        if settings.cv_folds:
            result = _cross_validate_all(settings, inputs, work, env_tags, parent.info.run_id, uri)
        else:
            result = _train_and_decide(settings, inputs, work, env_tags, parent.info.run_id, uri)
        record.record_run(result, settings, inputs)
    return result


def _train_and_decide(
    settings, inputs: Inputs, work: Path, env_tags, run_id: str, uri: str
) -> WorkflowResult:
    train_yaml = inputs.train.to_yaml(work / "train.yml")
    # Rasa's load-time retraining is skipped when a model is loaded to be scored (fast_load.py);
    # Rasa's plots are drawn by a helper process while the next pipeline trains (plots.py)
    with fast_load.enabled(), plots.PlotHelper(runs.log_artifact_to, runs.set_run_tags) as helper:
        candidates = []
        for i, config in enumerate(inputs.configs, start=1):
            logger.info("[%d/%d] %s: training", i, len(inputs.configs), config.name)
            candidates.append(
                run_candidate(config, inputs, settings, train_yaml, work / config.name, env_tags, helper)
            )
        chosen = selection.select_best(
            {x.name: x.metrics for x in candidates},
            settings.primary_metric,
            settings.policy.min_critical_pass_rate,
        )
        _log_selection(candidates, chosen)
        with helper.capture(run_id, c.ARTIFACT_CHAMPION_REPORTS):
            outcome = _after_selection(settings, inputs, candidates, chosen, work / "champion")
    return WorkflowResult(run_id, uri, candidates, chosen, outcome)


def _fetch_and_prepare(settings: WorkflowSettings, source: remote.RemoteSource, work: Path) -> Inputs:
    """Remote data is fetched inside the parent run, so a failed fetch is on record as a FAILED run."""
    try:
        logger.info("fetching training data from %s", source.display)
        return prepare(settings, remote.fetch(source, work))
    except (remote.RemoteDataError, InputError) as error:
        runs.set_tags({c.TAG_ERROR: str(error)[: c.MAX_TAG_LENGTH]})
        raise


def _cross_validate_all(settings, inputs: Inputs, work: Path, env_tags, run_id: str, uri: str):
    """--cv-folds: one child run per config with cross-validated scores; nothing is registered."""
    results = []
    for i, config in enumerate(inputs.configs, start=1):
        logger.info(
            "[%d/%d] %s: %d-fold cross-validation", i, len(inputs.configs), config.name, settings.cv_folds
        )
        with runs.candidate_run(config.name, env_tags):
            runs.log_params(candidate_params(config, inputs, settings))
            log_datasets(inputs)
            cv = crossval.cross_validate(
                config, inputs.train, settings.cv_folds, settings.seed, inputs.suite, work / config.name
            )
            runs.log_cross_validation(cv)
            runs.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
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
        c.TAG_ENTITY_EXTRACTORS: ",".join(best.extractors),
    }


def _log_workflow_inputs(settings: WorkflowSettings, inputs: Inputs) -> None:
    runs.log_params(
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
    log_datasets(inputs)


def _log_selection(candidates: list[Candidate], chosen: selection.Selection) -> None:
    best = next((x for x in candidates if x.name == chosen.best), None)
    if best is not None:
        runs.set_run_tags(best.run_id, {c.TAG_BEST: "true"})
        runs.set_tags({c.TAG_BEST: best.name, "best_run_id": best.run_id})
        runs.log_metrics({f"best_{k}": best.metrics[k] for k in c.KEY_METRICS if k in best.metrics})
    runs.log_json({"best": chosen.best, "reasons": chosen.reasons}, "selection.json")
