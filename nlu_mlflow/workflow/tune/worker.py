"""Running trials: in the workflow's own process (``run_trials``) or as ``tune-worker`` (``join``) from any
machine that reaches the study's storage and the tracking server."""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from nlu_mlflow import constants as c
from nlu_mlflow.decide import search_space
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import fast_load, pipelines, progress, rung_scores, runtime, scoring, training
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.tracking import runs
from nlu_mlflow.workflow.tune import study as studies
from nlu_mlflow.workflow.tune.study import COUNTED, SURPLUS_ATTR, SearchError, StudySpec, TrialData

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True)
class Outcome:
    score: float
    epochs: int  # epochs trained: the last rung's in one training, the sum of the rungs' one per rung
    seconds: float
    pruned: bool


@dataclass(frozen=True)
class WorkerResult:
    study: str
    ran: int  # trials this worker ran
    finished: int  # trials of the study that completed or were pruned
    wanted: int
    best: optuna.trial.FrozenTrial | None
    metric: str

    def line(self) -> str:
        best = (
            f"best so far: trial {self.best.number}, {self.metric} {self.best.value:.4f}"
            if self.best
            else "no trial completed yet"
        )
        return f"ran {self.ran} trial(s) of study {self.study}; {self.finished} of {self.wanted} done; {best}"


def run_trials(study: optuna.Study, spec: StudySpec, config, data: TrialData) -> int:
    """Run trials in this process until the study holds ``spec.trials`` (counting every worker's);
    returns how many ran here. A trial that raises is recorded as failed and the next one starts."""
    if studies.counted(study) >= spec.trials:
        return 0
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # "retracing" warnings: trials retrain alike
    ran = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        return _objective(trial, spec, config, data)

    study.optimize(
        objective,
        callbacks=[optuna.study.MaxTrialsCallback(spec.trials, states=COUNTED)],
        catch=(Exception,),
        gc_after_trial=True,
    )
    return len(ran)


def _objective(trial: optuna.Trial, spec: StudySpec, config, data: TrialData) -> float:
    _refuse_surplus(trial, spec)
    values = {d.name: _suggest(trial, d) for d in config.search}
    tags = {c.TAG_CONFIG: config.name, c.TAG_STUDY: spec.study, c.TAG_TRIAL: str(trial.number)}
    with runs.trial_run(spec.parent_run_id, f"{config.name}-trial-{trial.number}", tags) as run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
        runs.log_params(values)
        outcome = _train_in_rungs(
            trial, config.with_values(values), spec, data.work / f"trial-{trial.number}", data
        )
        runs.log_metrics({c.EPOCHS_TRAINED: outcome.epochs, c.TRAIN_SECONDS: outcome.seconds})
        runs.set_tags(
            {c.TAG_TRIAL_STATE: (TrialState.PRUNED if outcome.pruned else TrialState.COMPLETE).name}
        )
    trial.set_user_attr(c.EPOCHS_TRAINED, outcome.epochs)
    logger.info(
        "    trial %d: %s %.4f after %d epochs%s",
        trial.number,
        spec.metric_name,
        outcome.score,
        outcome.epochs,
        ", pruned" if outcome.pruned else "",
    )
    if outcome.pruned:
        raise optuna.TrialPruned(f"pruned after {outcome.epochs} epochs")
    return outcome.score


def _refuse_surplus(trial: optuna.Trial, spec: StudySpec) -> None:
    """Two workers may start a trial at once when one is missing: the later one stops before any work."""
    earlier = [t for t in trial.study.get_trials(deepcopy=False, states=COUNTED) if t.number < trial.number]
    if len(earlier) >= spec.trials:
        trial.set_user_attr(SURPLUS_ATTR, True)
        trial.study.stop()
        raise SearchError(f"trial {trial.number} is beyond the study's {spec.trials} trials; not run")


def _suggest(trial: optuna.Trial, d: search_space.Dimension) -> object:
    if d.kind == "choice":
        return trial.suggest_categorical(d.name, list(d.choices))
    low, high = d.bounds
    if d.kind == "int":
        return trial.suggest_int(d.name, int(low), int(high), log=d.log)
    return trial.suggest_float(d.name, float(low), float(high), log=d.log)


def _train_in_rungs(trial: optuna.Trial, config, spec: StudySpec, work: Path, data: TrialData) -> Outcome:
    """Score ``config`` at each rung's epochs (one rung without pruning), reporting every score: from inside
    one training where the pipeline allows (``rung_scores``), else one training per rung."""
    full, first = config.max_epochs(), spec.min_epochs if spec.pruning else None  # full: the last rung
    why = rung_scores.unsupported_reason(config.pipeline) if full else "nothing trains in epochs"
    if why or not full:
        logger.debug("    trial %d: a training per rung (%s)", trial.number, why)
        return _train_rung_by_rung(trial, config, spec, work, data, search_space.rungs(full, first))
    steps = search_space.rungs(full, first)
    reported: list[tuple[int, float]] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        score = metrics.get(spec.metric, float("nan"))
        reported.append((epoch, score))
        trial.report(score, epoch)
        runs.log_metric_at(spec.metric_name, score, epoch)
        return epoch < steps[-1] and trial.should_prune()

    seconds = _train_scoring_rungs(config, data, work, steps, report)
    if not reported:
        raise SearchError(f"trial {trial.number}: training ended before its first rung ({steps[0]} epochs)")
    epoch, score = reported[-1]
    return Outcome(score, epoch, seconds, pruned=epoch < steps[-1])


def _train_scoring_rungs(config, data: TrialData, work: Path, steps: list[int], report) -> float:
    """One training of ``config`` that calls ``report(epoch, metrics)`` at each of ``steps`` and stops at the
    last one, or earlier when ``report`` says prune; returns its seconds."""
    label = progress.Progress(f"{config.name} {work.name}")
    extractors = pipelines.entity_extractors(config)
    scorer = rung_scores.RungScorer(data.validation, extractors, steps, report, work / "reports")
    try:
        _, seconds = training.train_until_stopped(config, data.train_yaml, work, [scorer, label])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        runtime.release_memory()  # the stopped model's graphs and Keras state
    return seconds


def _train_rung_by_rung(trial: optuna.Trial, config, spec: StudySpec, work: Path, data, steps) -> Outcome:
    """A fresh training per rung, each scored on the validation split (pipelines ``rung_scores`` cannot
    score during training)."""
    epochs, seconds = 0, 0.0
    for i, step in enumerate(steps):
        score, took = _train_and_score(config.with_epoch_cap(step), spec.metric, data, work)
        epochs, seconds = epochs + (step or 0), seconds + took
        trial.report(score, step or 0)
        runs.log_metric_at(spec.metric_name, score, step or 0)
        if i < len(steps) - 1 and trial.should_prune():
            return Outcome(score, epochs, seconds, pruned=True)
    return Outcome(score, epochs, seconds, pruned=False)


def _train_and_score(config, metric: str, data: TrialData, work: Path) -> tuple[float, float]:
    try:
        trained = training.train(config, data.train_yaml, work)
        extractors = pipelines.entity_extractors(config)
        metrics = scoring.validation_metrics(trained.archive, data.validation, extractors, work / "reports")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # archives of every rung of every trial add up
    return metrics.get(metric, float("nan")), trained.seconds


# --- tune-worker ----------------------------------------------------------------------------------------


def join(
    study_name: str, storage_url: str, tracking_uri: str | None = None, seed: int | None = None
) -> WorkerResult:
    """Join study ``study_name`` from anywhere that reaches its storage and the tracking server: run trials
    until the study holds the trials it asked for. Everything else comes from the study itself."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = studies.storage(storage_url)
    spec = studies.spec_of(study_name, store, storage_url)
    runtime.quiet_rasa()
    runs.bound_http_retries()
    runs.use_tracking_uri(tracking_uri or spec.tracking_uri)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    logger.info("joining study %s (seed %d): %d trials wanted", study_name, seed, spec.trials)
    study = optuna.load_study(
        study_name=study_name,
        storage=store,
        sampler=studies.sampler(seed, spec.trials),
        pruner=studies.pruner(spec),
    )
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-tune-") as tmp, fast_load.enabled():
        ran = run_trials(study, spec, spec.config(), _download(spec, Path(tmp)))
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    best = max(complete, key=_value) if complete else None
    return WorkerResult(study_name, ran, len(finished), spec.trials, best, spec.metric_name)


def _value(trial: FrozenTrial) -> float:
    assert trial.value is not None, f"trial {trial.number} is complete: it has its (single) objective's value"
    return trial.value


def _download(spec: StudySpec, tmp: Path) -> TrialData:
    """The exact data the study's trials use, from the config's run; checked against the study's digests."""
    parts = []
    for name, uri, digest in (
        ("train", spec.train_uri, spec.train_digest),
        ("validation", spec.validation_uri, spec.validation_digest),
    ):
        path = runs.download_artifact(uri, tmp / name)
        data = load_nlu(path)
        if data.digest != digest:
            raise InputError(
                f"{uri}: its examples differ from those study {spec.study} was started with "
                f"(digest {data.digest}, expected {digest}); start a new study."
            )
        parts.append((path, data))
    (train_yaml, _), (_, held) = parts
    return TrialData(train_yaml, held, tmp / "trials")
