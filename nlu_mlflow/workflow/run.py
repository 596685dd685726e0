"""The orchestrator: the only module that knows the order of the steps.

load project/config + data -> validate -> for each config (train -> evaluate -> log; a failure fails that
candidate only) -> select the best -> re-score production on the same data -> decide -> register ->
record the decision -> re-read production and move it (deciding again if another host moved it meanwhile)
-> record that it moved.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide import replay as replay_rules
from nlu_mlflow.decide import selection
from nlu_mlflow.decide.crossval import CVResult
from nlu_mlflow.decide.promotion import Decision, Scores, decide
from nlu_mlflow.decide.summary import now_iso
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import fast_load, plots, runtime
from nlu_mlflow.tracking import registry, runs, score_cache
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow import backends, crossval, finetuning, handoff, record, remote, replay
from nlu_mlflow.workflow import champion as champion_step
from nlu_mlflow.workflow.candidates import (
    Candidate,
    CandidateFailed,
    CandidateInputs,
    FailedCandidate,
    candidate_params,
    data_params,
    log_datasets,
    run_candidate,
)
from nlu_mlflow.workflow.champion import ChampionUnusable
from nlu_mlflow.workflow.inputs import Inputs, prepare
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

__all__ = ["WorkflowSettings", "run", "prepare", "summary_table", "ChampionUnusable"]

# how often production may change under a run (other hosts promoting) before it gives up
MAX_RECHECKS = 3


@dataclass(frozen=True, eq=False)
class Outcome:
    """What happened after selection: the registered version, the champion and the decision."""

    version: registry.Version | None = None
    champion: champion_step.ChampionScores | None = None
    decision: Decision | None = None
    promoted: bool = False  # production moved to ``version``
    message: str = ""
    rechecks: int = 0  # times production changed before the move and the decision was made again
    moved_at: str | None = None  # when production was moved to ``version`` (set once it was)
    replaced: str | None = None  # the version that held production just before that move


@dataclass(frozen=True, eq=False)
class WorkflowResult:
    run_id: str
    tracking_uri: str
    candidates: list[Candidate]
    selection: selection.Selection
    outcome: Outcome
    cross_validation: list[CVResult] = field(default_factory=list)  # --cv-folds runs only
    failed: list[FailedCandidate] = field(default_factory=list)  # candidates that did not train or score

    @property
    def best(self) -> Candidate | None:
        return next((x for x in self.candidates if x.name == self.selection.best), None)


summary_table = record.summary_table


def run(settings: WorkflowSettings) -> WorkflowResult:
    """Train, evaluate and log every config, register the best, promote it if it wins."""
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
            assert source is not None, "inputs are prepared here only for a remote source"
            inputs = _fetch_and_prepare(settings, source, work / "data")
        shared = None if settings.cv_folds else _hand_off(settings, inputs, work, env_tags)
        inputs = shared.inputs if shared else inputs
        _log_workflow_inputs(settings, inputs)
        try:
            if shared is None:  # --cv-folds
                result = _cross_validate_all(settings, inputs, work, env_tags, parent.info.run_id, uri)
            else:
                result = _train_and_decide(settings, shared, work, parent.info.run_id, uri)
        except ChampionUnusable as error:
            record.record_failure(settings, str(error))
            raise
        record.record_run(result, settings, inputs)
    return result


def _hand_off(settings: WorkflowSettings, inputs: Inputs, work: Path, env_tags) -> CandidateInputs:
    """Write the run's exact inputs, log them on the parent run and read them back: every candidate, in this
    process or elsewhere, trains and is scored on these bytes (``handoff``)."""
    folder = handoff.write(inputs, settings, work / handoff.ARTIFACT_DIR, env_tags)
    runs.log_artifacts(folder, handoff.ARTIFACT_DIR)
    shared = handoff.read(folder, work / "shared")
    return CandidateInputs(
        dataclasses.replace(shared.inputs, overlap=inputs.overlap), settings, shared.train_yaml, shared.tests,
        env_tags,
    )  # fmt: skip


def _train_and_decide(settings, shared: CandidateInputs, work: Path, run_id: str, uri: str) -> WorkflowResult:
    inputs, tests = shared.inputs, shared.tests
    # Rasa's load-time retraining is skipped when a model is loaded to be scored (fast_load.py);
    # Rasa's plots are drawn by a helper process while the next pipeline trains (plots.py)
    # fine-tuned candidates load production's weights through Rasa's own load (fast_load leaves it alone)
    plan = finetuning.plan(settings, inputs, shared.train_yaml, work / "finetune")
    with fast_load.enabled(), plots.PlotHelper(runs.log_artifact_to, runs.set_run_tags) as helper:
        candidates, failed = _train(plan.schedule(inputs.configs), settings, shared, work, helper, run_id)
        if not candidates and not plan.scratch:  # --finetune-only, and every fine-tune failed
            logger.warning("--finetune-only: no fine-tuned candidate trained; training from scratch instead")
            runs.set_tags({c.TAG_FULL_RETRAIN: "every fine-tuned candidate failed"})
            scratch = [(x, None) for x in inputs.configs]
            more, more_failed = _train(scratch, settings, shared, work, helper, run_id)
            candidates, failed = more, failed + more_failed
        chosen = _select(candidates, failed, settings)
        _log_selection(candidates, chosen)
        with helper.capture(run_id, c.ARTIFACT_CHAMPION_REPORTS):
            partial = WorkflowResult(run_id, uri, candidates, chosen, Outcome(), failed=failed)
            outcome = _after_selection(settings, inputs, partial, work / "champion", tests)
    return WorkflowResult(run_id, uri, candidates, chosen, outcome, failed=failed)


def _train(schedule, settings, shared: CandidateInputs, work: Path, helper, run_id: str):
    """Train the schedule on the settings' backend. Fine-tuned candidates (cheap by design, and they need
    production's archive, which this process has) always train here; from-scratch ones go to the backend."""
    if settings.backend == "inline":
        return _train_all(schedule, shared, work, helper)
    submission = backends.Submission(
        settings.backend, settings.parallel, settings.candidate_timeout, _project_uri(settings),
        settings.kubernetes_config if settings.backend == "kubernetes" else None,
    )  # fmt: skip
    scratch = [config for config, job in schedule if job is None]
    submitted = backends.run_submitted(scratch, submission, run_id, shared.env_tags) if scratch else ([], [])
    here = _train_all([(config, job) for config, job in schedule if job is not None], shared, work, helper)
    return submitted[0] + here[0], submitted[1] + here[1]


def _train_all(schedule, shared: CandidateInputs, work: Path, helper):
    """Train, score and log each (config, fine-tune job or None) in order; a failure fails that one only."""
    candidates, failed = [], []
    for i, (config, job) in enumerate(schedule, start=1):
        logger.info("[%d/%d] %s: %s", i, len(schedule), config.name, "fine-tuning" if job else "training")
        try:
            candidates.append(run_candidate(config, shared, work / config.name, helper, job))
        except CandidateFailed as error:
            failed.append(error.failed)
    return candidates, failed


def _project_uri(settings: WorkflowSettings) -> Path:
    """The MLproject whose ``candidate`` entry point runs a submitted candidate: this repository's for the
    local backend, the docker variant in deploy/kubernetes/ for Kubernetes."""
    root = Path(__file__).resolve().parents[2]
    return root / "deploy" / "kubernetes" if settings.backend == "kubernetes" else root


def _select(candidates: list[Candidate], failed: list[FailedCandidate], settings) -> selection.Selection:
    policy = settings.policy
    chosen = selection.select_best(
        {x.name: x.metrics for x in candidates},
        settings.primary_metric,
        policy.min_critical_pass_rate,
        policy.min_conversation_pass_rate,
    )
    reasons = {**chosen.reasons, **{x.name: f"failed: {x.reason}" for x in failed}}
    return selection.Selection(chosen.best, reasons)


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
    if settings.finetuning:
        logger.info("cross-validation trains every pipeline from scratch; fine-tuning does not apply")
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


def _after_selection(settings, inputs: Inputs, partial: WorkflowResult, work: Path, tests) -> Outcome:
    """Score production, decide, register, record, and only then move production (see ``_move``)."""
    best = partial.best
    if best is None:
        return Outcome(message="nothing registered: " + _why_none(partial.selection))
    if not settings.register_best:
        return Outcome(message=f"best candidate {best.name}; registration turned off (--no-register)")
    holder = (
        registry.alias_holder(settings.model_name) if registry.is_registered(settings.model_name) else None
    )
    champ = _rescore(holder, inputs, work, tests, partial.run_id)  # before registering: may be unusable
    replayed = replay.for_run(settings, best.model_uri, holder, inputs, work / "replay")
    decision = _decide(best, champ, inputs, settings, replayed)
    tags = _version_tags(best, inputs, settings)
    version = registry.register(
        best.model_uri, settings.model_name, tags | _replay_tags(replayed, settings.live_window)
    )
    logger.info("registered %s version %s (%s)", settings.model_name, version.version, best.name)
    key = champion_step.cache_key(inputs)
    reference = {"run_id": best.run_id, "path": score_cache.artifact_file(key), "at": now_iso()}
    score_cache.tag_version(version, key, _json(reference))
    outcome = _outcome(settings, version, best, champ, decision)
    return _move(settings, inputs, partial, (best, version), outcome, work, tests)


def _move(
    settings,
    inputs: Inputs,
    partial: WorkflowResult,
    registered: tuple[Candidate, registry.Version],
    outcome: Outcome,
    work: Path,
    tests,
) -> Outcome:
    """Record the decision, then move production if it says so. Immediately before the move the holder is
    read again: when another host moved production since the champion was scored, the decision is made
    again against the new holder (scored on the same data) instead of overwriting it. What remains is the
    window between that read and the alias write (one registry round trip). ``registered``: the best
    candidate and its registered version, ``outcome.version``."""
    best, version = registered
    for recheck in range(MAX_RECHECKS + 1):
        record.record_decision(_with(partial, outcome), settings)
        if not outcome.promoted:
            return outcome
        current = registry.alias_holder(settings.model_name)
        scored = outcome.champion.version.version if outcome.champion else None
        if (current.version if current else None) == scored:
            previous = registry.move_production(settings.model_name, version.version)
            at, replaced = now_iso("milliseconds"), previous.version if previous else None
            if replaced != scored:  # the window after the re-read: another host wrote the alias in it
                logger.warning("production was moved to version %s just before this run moved it", replaced)
            outcome = dataclasses.replace(outcome, moved_at=at, replaced=replaced)
            record.record_moved(_with(partial, outcome), settings)
            return outcome
        logger.warning(
            "production moved from version %s to %s while this run decided; deciding again against %s",
            scored, current.version if current else None, current.version if current else "no version",
        )  # fmt: skip
        again = work / f"recheck-{recheck + 1}"
        champ = _rescore(current, inputs, again, tests, partial.run_id)
        decision = _decide(
            best, champ, inputs, settings, replay.for_run(settings, best.model_uri, current, inputs, again)
        )
        outcome = _outcome(settings, version, best, champ, decision, recheck + 1)
    raise RegistryError(
        f"production of '{settings.model_name}' changed {MAX_RECHECKS + 1} times while this run decided; "
        "nothing was moved; rerun when the other promotions are done."
    )


def _with(partial: WorkflowResult, outcome: Outcome) -> WorkflowResult:
    return WorkflowResult(
        partial.run_id,
        partial.tracking_uri,
        partial.candidates,
        partial.selection,
        outcome,
        failed=partial.failed,
    )


def _json(value: dict) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _rescore(holder, inputs: Inputs, work: Path, tests, run_id: str) -> champion_step.ChampionScores | None:
    if holder is None:
        return None
    return champion_step.rescore(holder, inputs, work, tests, run_id)


def _decide(
    best: Candidate, champ, inputs: Inputs, settings, replayed: replay.Replay | None = None
) -> Decision:
    """The policy's checks, and its live gates on the replay and the live test set (off unless set)."""
    support = inputs.intent_support
    decision = decide(
        Scores(best.metrics, support, best.correct),
        Scores(champ.metrics, support, champ.correct) if champ else None,
        settings.policy,
    )
    report = replayed.report.metrics() if replayed else None
    return replay_rules.with_live(
        decision, replay_rules.live_checks(report, replay_rules.live_score(best.metrics), settings.policy)
    )


def _replay_tags(replayed: replay.Replay | None, window: str) -> dict[str, str]:
    return replay.version_tags(replayed.report, window) if replayed else {}


def _outcome(settings, version, best, champ, decision: Decision, rechecks: int = 0) -> Outcome:
    promote = decision.promote and settings.promote
    message = _outcome_message(settings, version, best, champ, decision, promote)
    return Outcome(version, champ, decision, promote, message, rechecks)


def _why_none(chosen: selection.Selection) -> str:
    return (
        "no candidate passes every critical utterance and test conversation ("
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
    tags = {
        c.TAG_CONFIG: best.name,
        "source_run_id": best.run_id,
        **{k: str(v) for k, v in data_params(inputs).items() if v is not None},
        "critical_digest": inputs.suite.digest if inputs.suite else "none",
        "config_digest": best.config_digest,
        "primary_metric": settings.primary_metric,
        settings.primary_metric: f"{metrics.get(settings.primary_metric, float('nan')):.6f}",
        c.CRITICAL_PASS_RATE: f"{metrics.get(c.CRITICAL_PASS_RATE, float('nan')):.6f}",
        c.TAG_ENTITY_EXTRACTORS: ",".join(best.extractors),
        c.TAG_HAS_CORE: str(best.has_core).lower(),
        **best.lineage,  # scratch or fine-tuned, and from which version
    }
    if c.CORE_CONVERSATION_ACCURACY in metrics:
        tags[c.CORE_CONVERSATION_ACCURACY] = f"{metrics[c.CORE_CONVERSATION_ACCURACY]:.6f}"
    return tags


def _log_workflow_inputs(settings: WorkflowSettings, inputs: Inputs) -> None:
    runs.log_params(
        {
            # names differ from the MLproject parameters, which `mlflow run` logs on this run already
            "data_source": inputs.train.source,
            "project_dir": str(inputs.project.root) if inputs.project else None,
            "test_source": inputs.test.source,
            "test_fraction": None if settings.test_data else settings.test_fraction,
            "seed": settings.seed,
            "epochs_cap": settings.epochs,
            "config_names": ",".join(x.name for x in inputs.configs),
            "critical_suite": settings.critical,
            "model_name": settings.model_name,
            **data_params(inputs),
            "train_examples": len(inputs.train.examples),
            "test_examples": len(inputs.test.examples),
            "test_conversations": (
                len(inputs.project.test_story_files)
                if inputs.project is not None and inputs.has_conversations
                else None
            ),
            **{f"policy.{k}": v for k, v in settings.policy.to_dict().items()},
        }
    )
    log_datasets(inputs)


def _log_selection(candidates: list[Candidate], chosen: selection.Selection) -> None:
    best = next((x for x in candidates if x.name == chosen.best), None)
    if best is not None:
        runs.set_run_tags(best.run_id, {c.TAG_BEST: "true"})
        runs.set_tags({c.TAG_BEST: best.name, c.TAG_BEST_RUN: best.run_id})
        runs.log_metrics(
            {f"{c.BEST_METRIC_PREFIX}{k}": best.metrics[k] for k in c.KEY_METRICS if k in best.metrics}
        )
    runs.log_json({"best": chosen.best, "reasons": chosen.reasons}, "selection.json")
