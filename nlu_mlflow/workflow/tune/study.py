"""A study and what it holds: the spec a worker needs (``StudySpec``), the storage, sampler and pruner."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nlu_mlflow import constants as c
from nlu_mlflow.decide import search_space
from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa.data import NluData

logger = logging.getLogger("nlu_mlflow")

STORAGE_FILE = "optuna.db"  # the default storage, beside the local MLflow store
SPEC_ATTR = "nlu_mlflow.spec"  # the study's user attribute holding the StudySpec
DEFAULT_ATTR = "nlu_mlflow.default"  # the trial that tries the config's own values
SURPLUS_ATTR = "nlu_mlflow.surplus"  # a trial started after the study was full: failed, never run
HEARTBEAT_S = 30  # a running trial proves its worker alive this often ...
GRACE_S = 180  # ... and is failed after this long without (optuna.storages.fail_stale_trials)
# what counts towards --trials: a trial that failed was tried; one running elsewhere will finish
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)


class SearchError(RuntimeError):
    """A study could not produce a config (no trial completed); the message names the study and why."""


@dataclass(frozen=True)
class StudySpec:
    """What any worker needs to run a trial of a study; stored in the study's user attributes."""

    study: str
    config_file: str  # the config's file name (its stem names the runs)
    config_text: str  # the effective config with its `search:` section (``PipelineConfig.text``)
    parent_run_id: str  # the config's run, which every trial's run nests under
    tracking_uri: str  # without credentials (workers log in through MLFLOW_TRACKING_USERNAME/PASSWORD)
    train_uri: str  # artifact URIs of the exact data the trials train on and are scored on
    validation_uri: str
    train_digest: str
    validation_digest: str
    seed: int
    validation_fraction: float
    epochs_cap: int | None
    metric: str
    trials: int
    pruning: bool
    min_epochs: int | None  # the first rung (None: no pruning, or nothing trains in epochs)

    def config(self) -> pipelines.PipelineConfig:
        return pipelines.parse(self.config_text, Path(self.config_file), self.epochs_cap, self.seed)

    @property
    def metric_name(self) -> str:
        return c.VALIDATION_PREFIX + self.metric


@dataclass(frozen=True)
class TrialData:
    train_yaml: Path  # the part of the training data the trials train on, as Rasa YAML
    validation: NluData
    work: Path


def storage_url_of(settings) -> str:
    return settings.study_storage or f"sqlite:///{(Path(settings.project_dir) / STORAGE_FILE).resolve()}"


def storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's database storage at ``url`` (SQLite for one machine, PostgreSQL for several), with
    heartbeats so a trial whose worker died is failed; a URL that does not open is an InputError."""
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except Exception as error:  # SQLAlchemy: bad URL, unknown driver, database down or refusing
        raise InputError(
            f"--study-storage {redact_url(url)}: cannot open it ({type(error).__name__}); give a SQLAlchemy "
            "URL such as sqlite:///optuna.db or postgresql+psycopg2://user@host/optuna and check the "
            "database is reachable."
        ) from None


def sampler(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """TPE, seeded; a third of the trials (3 to 10) sample at random first; ``constant_liar`` keeps
    parallel workers from sampling the same point."""
    startup = max(3, min(10, trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    if not (spec.pruning and spec.min_epochs):
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.min_epochs, reduction_factor=search_space.REDUCTION_FACTOR
    )


def create(spec: StudySpec, config, store, first: list[dict] | None = None) -> optuna.Study:
    """The study in ``store``, holding ``spec``; ``first`` (default: the config's own values) enqueued."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines say what happened
    study = optuna.create_study(
        study_name=spec.study,
        storage=store,
        sampler=sampler(spec.seed, spec.trials),
        pruner=pruner(spec),
        direction="maximize",
    )
    study.set_user_attr(SPEC_ATTR, dataclasses.asdict(spec))
    for values in first or []:
        study.enqueue_trial(values)
    if first is not None:
        return study
    own = config.current_values()
    if all(search_space.contains(d, own[d.name]) for d in config.search):
        study.enqueue_trial(own, user_attrs={DEFAULT_ATTR: True})
    else:
        logger.info(
            "  %s: the config's own values lie outside the search space; not tried first", config.name
        )
    return study


def spec_of(study_name: str, store, storage_url: str) -> StudySpec:
    """The spec a workflow run stored in study ``study_name``; an InputError names what is wrong."""
    try:
        attrs = optuna.load_study(study_name=study_name, storage=store).user_attrs
    except KeyError:
        raise InputError(
            f"--study {study_name}: no such study in {redact_url(storage_url)}; copy the name the workflow "
            "logged (param search.study of the config's run) and its --study-storage."
        ) from None
    if SPEC_ATTR not in attrs:
        raise InputError(
            f"--study {study_name}: this study was not started by `nlu-mlflow run --trials`; "
            "pass the study of a workflow run."
        )
    return StudySpec(**attrs[SPEC_ATTR])


def counted(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))
