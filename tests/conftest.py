"""Shared fixtures: real Rasa models trained once per session on the project's tiny demo data."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import mlflow
import pytest

from nlu_mlflow.rasa import pipelines, runtime, training
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.rasa.project import load_project

from .helpers import CONFIGS, PIZZA, PIZZA_PROJECT, ROOT, SHARED_DATASETS  # noqa: F401  (imported by tests)


@pytest.fixture(scope="session")
def pizza_train():
    return load_nlu(PIZZA / "train.yml")


@pytest.fixture(scope="session")
def pizza_test():
    return load_nlu(PIZZA / "test.yml")


def _train(config_name: str, epochs: int, tmp_path_factory) -> training.TrainedModel:
    runtime.quiet_rasa()
    work = tmp_path_factory.mktemp(config_name)
    config = pipelines.load(CONFIGS / f"{config_name}.yml", epochs=epochs, seed=42)
    train_yaml = load_nlu(PIZZA / "train.yml").to_yaml(work / "train.yml")
    return training.train(config, train_yaml, work)


@pytest.fixture(scope="session")
def logreg_model(tmp_path_factory) -> training.TrainedModel:
    """LogisticRegression + CRF on the pizza data: no TensorFlow training, about 10 s."""
    return _train("logreg_crf", 1, tmp_path_factory)


@pytest.fixture(scope="session")
def diet_model(tmp_path_factory) -> training.TrainedModel:
    """DIET (intents + entities) on the pizza data, 3 epochs: the TensorFlow path, about 40 s."""
    return _train("diet", 3, tmp_path_factory)


@pytest.fixture(scope="session")
def pizza_project():
    return load_project(PIZZA_PROJECT)


@pytest.fixture(scope="session")
def assistant_model(pizza_project, tmp_path_factory) -> training.TrainedModel:
    """The pizza assistant as a whole model (NLU + dialogue): the light pipeline with the project's
    ResponseSelector and policies, 3 epochs; trained once (about a minute)."""
    runtime.quiet_rasa()
    work = tmp_path_factory.mktemp("assistant")
    config = pipelines.load(CONFIGS / "logreg_crf.yml", 3, 42, pizza_project.pipeline_defaults())
    train_yaml = load_nlu(pizza_project.data_dir).to_yaml(work / "train.yml")
    return training.train(config, train_yaml, work, project=pizza_project)


# What the process started with: a session fixture's set_experiment must not become a later module's start.
_MLFLOW_AT_START = os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_EXPERIMENT_ID")


@contextlib.contextmanager
def _mlflow_state_restored(to: tuple[str | None, str | None] | None = None) -> Iterator[None]:
    """MLflow keeps the tracking URI (and $MLFLOW_TRACKING_URI), the active experiment (and
    $MLFLOW_EXPERIMENT_ID) and the active run in process globals: whatever a test or a fixture set there
    would send a later test's runs to their store or experiment. Restores ``to`` (tracking URI, experiment
    id), else what was set on entry."""
    uri, experiment_id = to or (os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_EXPERIMENT_ID"))
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(uri)  # also restores (or unsets) $MLFLOW_TRACKING_URI
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment exports it
    if experiment_id is not None:
        os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_id


@pytest.fixture(autouse=True, scope="module")
def _no_mlflow_state_between_modules():
    """A module ends with the process's first state: a session fixture set up by its first test (set up
    before this fixture) leaves its store and experiment to this module's tests only."""
    with _mlflow_state_restored(_MLFLOW_AT_START):
        yield


@pytest.fixture(autouse=True)
def _no_mlflow_state_between_tests():
    with _mlflow_state_restored():
        yield


@pytest.fixture()
def tracking_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


@pytest.fixture(scope="session")
def rasa_api(logreg_model, tmp_path_factory):
    """`rasa run --enable-api --auth-token` serving the logreg model: started once (30-60 s), shared
    by the webhook tests; each test reads what it serves before changing it."""
    from .helpers import servers

    home = tmp_path_factory.mktemp("rasa_api")
    token = "rasa-token-" + secrets.token_hex(12)
    with servers.rasa_server(logreg_model.archive, token, home / "rasa.log") as api:
        yield api


# Session fixtures that train a Rasa model (or start a server with one): a test that needs one is slow.
TRAINING_FIXTURES = frozenset({"logreg_model", "diet_model", "assistant_model", "rasa_api"})


# Tests that share nothing (no module fixture) and each take minutes: under `make test` (pytest-xdist,
# --dist loadgroup) each may run on its own worker; every other test runs with its module's tests.
ONE_BY_ONE = ("tests/scripts/test_benchmarks.py::test_benchmark_runs_in_quick_mode",)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items):
    """Mark slow every test whose fixtures (direct or indirect) train a model, so `make test-fast`
    (`-m "not slow"`) never trains one through a fixture; tests that train in their own body carry the mark.

    For two workers: a module's tests stay together (one group: module fixtures start once), and modules with
    a slow test go first, so the quick ones fill the workers' last minutes instead of a long module alone."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        module = item.nodeid.split("::")[0]
        one_by_one = item.nodeid.startswith(ONE_BY_ONE)
        item.add_marker(pytest.mark.xdist_group(item.nodeid if one_by_one else module))
    slow_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_modules)  # stable: order kept within


from .helpers.label_studio import label_studio  # noqa: E402, F401  (the session's Label Studio, started on first use)
