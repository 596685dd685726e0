"""The workflow's side of a search: split the data, start the study, run trials here, wait for the other
workers (up to a deadline), pick the best trial and record the study on the config's run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nlu_mlflow import constants as c
from nlu_mlflow.decide import search_space, validation
from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import fast_load, pipelines
from nlu_mlflow.rasa.data import NluData, split
from nlu_mlflow.tracking import runs
from nlu_mlflow.workflow.tune import report
from nlu_mlflow.workflow.tune import study as studies
from nlu_mlflow.workflow.tune.study import SearchError, StudySpec, TrialData
from nlu_mlflow.workflow.tune.worker import run_trials

logger = logging.getLogger("nlu_mlflow")

POLL_S = 5.0
# how long the workflow waits for trials other workers still run once its own are done; a worker that dies
# is noticed sooner (its heartbeat stops: ``study.GRACE_S``), this bounds a live one that hangs
WAIT_DEADLINE_S = 6 * 3600.0


@dataclass(frozen=True, eq=False)
class StudyResult:
    study: optuna.Study
    spec: StudySpec
    config: pipelines.PipelineConfig  # the best trial's
    best: optuna.trial.FrozenTrial
    seconds: float

    def trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    @property
    def epochs_trained(self) -> int:
        return sum(t.user_attrs.get(c.EPOCHS_TRAINED, 0) for t in self.trials())


def best_config(
    config: pipelines.PipelineConfig, train: NluData, settings, work: Path
) -> pipelines.PipelineConfig:
    """The workflow's hook: ``config`` as written without ``settings.trials`` or a `search:` section; else
    the best trial's config of a study run inside the active run (the config's), trials nested under it."""
    if not settings.trials or not config.search:
        return config
    return search(config, train, settings, work / "search").config


def search(config, train: NluData, settings, work: Path, first: list[dict] | None = None) -> StudyResult:
    """Run ``config``'s study (``settings.trials`` trials, with every worker that joins) inside the active
    run and log it there. The trials try ``first`` first (default: the config's own values)."""
    started = time.perf_counter()
    study, spec, data = start(config, train, settings, work, first)
    with fast_load.enabled():
        run_trials(study, spec, config, data)
    wait_for_workers(study)
    best = _best(study, spec, config)
    seconds = time.perf_counter() - started
    report.log_study(study, spec, config, studies.storage_url_of(settings), seconds, work)
    logger.info(
        "  %s: best of %d trials is trial %d, %s %.4f: %s",
        config.name,
        spec.trials,
        best.number,
        spec.metric_name,
        best.value,
        best.params,
    )
    return StudyResult(study, spec, config.with_values(best.params), best, seconds)


def start(
    config, train: NluData, settings, work: Path, first: list[dict] | None = None
) -> tuple[optuna.Study, StudySpec, TrialData]:
    """Split the training data and log both parts on the active run, then create the study in the shared
    storage with everything a worker needs: from here on ``tune-worker`` can join it."""
    spec, data = _publish(config, train, settings, work)
    storage_url = studies.storage_url_of(settings)
    study = studies.create(spec, config, studies.storage(storage_url), first)
    logger.info(
        "  %s: searching %d trials (study %s); add workers with: nlu-mlflow tune-worker --study %s "
        "--study-storage %s",
        config.name,
        spec.trials,
        spec.study,
        spec.study,
        redact_url(storage_url),
    )
    return study, spec, data


def input_problems(settings, train: NluData, configs: list[pipelines.PipelineConfig]) -> list[str]:
    """What stops a search before anything runs: the options together, the validation split, the storage."""
    if not settings.trials:
        return []
    if settings.cv_folds:
        return [
            "--trials with --cv-folds: cross-validation scores the configs as written; drop one of the two."
        ]
    if not any(x.search for x in configs):
        logger.warning("--trials %d: no config has a `search:` section; nothing is searched", settings.trials)
        return []
    try:
        fit, held = _split(train, settings)
        studies.storage(studies.storage_url_of(settings))
    except InputError as error:
        return error.problems
    return validation.check_test_data(fit.view, held.view)


def _split(train: NluData, settings) -> tuple[NluData, NluData]:
    fraction, option = settings.validation_fraction, "--validation-fraction"
    return split(train, fraction, settings.seed, option, ("search train", "validation"))


def _publish(config, train: NluData, settings, work: Path) -> tuple[StudySpec, TrialData]:
    """Split the training data, log both parts on the config's run and describe the study for workers."""
    fit, held = _split(train, settings)
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "train.yml": fit.to_yaml(work / "train.yml"),
        "validation.yml": held.to_yaml(work / "validation.yml"),
    }
    for path in files.values():
        runs.log_artifact(path, c.ARTIFACT_SEARCH)
    run_id = runs.active_run_id()
    assert run_id is not None, "the artifacts above were logged on the active run"
    top = max(
        filter(None, [config.max_epochs(), search_space.largest(list(config.search), "epochs")]), default=0
    )
    spec = StudySpec(
        study=f"{config.name}-{run_id}",
        config_file=config.path.name,
        config_text=config.text(),
        parent_run_id=run_id,
        tracking_uri=runs.tracking_uri(),
        train_uri=runs.artifact_uri(f"{c.ARTIFACT_SEARCH}/train.yml"),
        validation_uri=runs.artifact_uri(f"{c.ARTIFACT_SEARCH}/validation.yml"),
        train_digest=fit.digest,
        validation_digest=held.digest,
        seed=settings.seed,
        validation_fraction=settings.validation_fraction,
        epochs_cap=settings.epochs,
        metric=settings.primary_metric,
        trials=settings.trials,
        pruning=settings.pruning,
        min_epochs=search_space.min_epochs(int(top)) if settings.pruning and top else None,
    )
    return spec, TrialData(files["train.yml"], held, work)


def wait_for_workers(
    study: optuna.Study, deadline_s: float = WAIT_DEADLINE_S, poll_s: float = POLL_S
) -> None:
    """Trials other workers still run finish (or are failed once their heartbeat stops) before the best is
    picked; after ``deadline_s`` a SearchError names the trials still running."""
    deadline = time.monotonic() + deadline_s
    while running := study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if time.monotonic() >= deadline:
            numbers = ", ".join(str(t.number) for t in running)
            raise SearchError(
                f"study {study.study_name}: trial(s) {numbers} still running on other workers after "
                f"{deadline_s:.0f} s of waiting; stop those workers (their trials fail once the heartbeat "
                "stops) or let them finish, then start the run again."
            )
        optuna.storages.fail_stale_trials(study)
        time.sleep(poll_s)


def _best(study: optuna.Study, spec: StudySpec, config) -> optuna.trial.FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        why = failed[0].system_attrs.get("fail_reason", "see the log") if failed else "every trial was pruned"
        raise SearchError(
            f"{config.path}: none of the {spec.trials} trials of study {spec.study} completed ({why}); "
            "check the `search:` ranges against the component's options."
        )
    return study.best_trial
