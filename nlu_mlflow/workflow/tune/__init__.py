"""Hyperparameter search: an Optuna study per config with a `search:` section, each trial a nested MLflow run.

Inside a config's run the workflow calls ``best_config`` (the hook in ``candidates.run_candidate``): the
training data is split (seeded, stratified) into the part the trials train on and the validation part they
are scored on, never the test set; both are logged as artifacts of the config's run. A study in the shared
Optuna storage (``--study-storage``) then runs ``--trials`` trials: TPE seeded with the run's seed, the
config's own values tried first, and with ``--pruning`` successive halving on epochs (``trial.report`` /
``trial.should_prune`` at each rung's epochs). The best trial's values make the config that the workflow
then trains on all the training data and tests like any other.

``tune-worker`` (``join``) joins a study from another machine: what a trial needs (the config, the run the
trials nest under, the data's artifact URIs and digests, seed, epoch cap, metric, the tracking URI) is in
the study's user attributes (``StudySpec``). Optuna is imported in this package and nowhere else.

One module a job: ``study`` (the spec, storage, sampler, pruner), ``search`` (the workflow's side: split,
start, wait for workers, pick the best), ``worker`` (running trials, here or as ``tune-worker``),
``report`` (what the config's run records of its study).
"""

from nlu_mlflow.workflow.tune.report import plots
from nlu_mlflow.workflow.tune.search import (
    StudyResult,
    best_config,
    input_problems,
    search,
    start,
    wait_for_workers,
)
from nlu_mlflow.workflow.tune.study import (
    SPEC_ATTR,
    STORAGE_FILE,
    SearchError,
    StudySpec,
    TrialData,
    storage,
    storage_url_of,
)
from nlu_mlflow.workflow.tune.worker import WorkerResult, join, run_trials

__all__ = [
    "SPEC_ATTR",
    "STORAGE_FILE",
    "SearchError",
    "StudyResult",
    "StudySpec",
    "TrialData",
    "WorkerResult",
    "best_config",
    "input_problems",
    "join",
    "plots",
    "run_trials",
    "search",
    "start",
    "storage",
    "storage_url_of",
    "wait_for_workers",
]
