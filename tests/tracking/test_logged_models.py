"""Candidates as MLflow 3 logged models, after a real `nlu-mlflow run` (pizza data, two configs, one epoch):
the experiment's Models tab (``mlflow.search_logged_models``) lists one model per candidate with the scores
its run logged, each candidate run names its model as output, the registered version points at the logged
model, and ``runs:/<run_id>/model`` still finds it."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import models
from tests.helpers import CONFIGS
from tests.helpers.cli import invoke, run_args

pytestmark = pytest.mark.slow

MODEL = "rasa-logged-models"
SCORES = (c.INTENT_F1_WEIGHTED, c.INTENT_ACCURACY, c.TRAIN_SECONDS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the CLI; yields (client, experiment id, candidate runs by config name)."""
    home = tmp_path_factory.mktemp("logged_models")
    configs = home / "configs"
    configs.mkdir()
    for name in ("logreg_crf.yml", "diet.yml"):
        shutil.copy(CONFIGS / name, configs / name)
    uri = f"sqlite:///{home / 'mlruns.db'}"
    done = invoke(run_args(home, uri, configs=configs, epochs=1) + ["--model-name", MODEL])
    assert done.exit_code == 0, done.output
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("nlu-mlflow").experiment_id
    candidates = client.search_runs([experiment], f"tags.`{c.TAG_ROLE}` = '{c.ROLE_CANDIDATE}'")
    yield client, experiment, {run.data.tags[c.TAG_CONFIG]: run for run in candidates}
    mlflow.set_tracking_uri(previous)


def test_the_models_tab_lists_every_candidate_with_its_scores(demo, capsys):
    client, experiment, candidates = demo
    listed = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    with capsys.disabled():  # what a user sees (`pytest -s` shows it)
        for model in listed:
            scores = {m.key: round(m.value, 4) for m in model.metrics if m.key in SCORES}
            config = model.tags[c.TAG_CONFIG]
            print(
                f"\n{model.model_id} {model.name} {config} {model.status} run={model.source_run_id} {scores}"
            )
    assert sorted(m.source_run_id for m in listed) == sorted(r.info.run_id for r in candidates.values())
    for model in listed:
        run = client.get_run(model.source_run_id)
        assert (model.name, str(model.status)) == (models.MODEL_ARTIFACT, "READY")
        assert model.tags[c.TAG_CONFIG] == run.data.tags[c.TAG_CONFIG]
        linked = {m.key: m.value for m in model.metrics}
        for name in SCORES:
            assert linked[name] == pytest.approx(run.data.metrics[name]), name
        assert model.params["config_digest"] == run.data.params["config_digest"]


def test_each_candidate_run_names_its_model(demo):
    client, experiment, candidates = demo
    by_run = {
        m.source_run_id: m.model_id
        for m in mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    }
    for run in candidates.values():
        outputs = client.get_run(run.info.run_id).outputs.model_outputs
        assert [o.model_id for o in outputs] == [by_run[run.info.run_id]]


def test_the_registered_version_points_at_its_logged_model(demo):
    client, experiment, candidates = demo
    [version] = client.search_model_versions(f"name='{MODEL}'")
    [model] = mlflow.search_logged_models(
        experiment_ids=[experiment], filter_string=f"source_run_id = '{version.run_id}'", output_format="list"
    )
    assert version.source == f"models:/{model.model_id}"
    assert json.loads(model.tags["mlflow.modelVersions"]) == [
        {"name": MODEL, "version": int(version.version)}
    ]


def test_runs_uris_still_find_the_model(demo, tmp_path):
    client, _, _ = demo
    [version] = client.search_model_versions(f"name='{MODEL}'")
    by_run = models.archive_path(f"runs:/{version.run_id}/{models.MODEL_ARTIFACT}", tmp_path / "by-run")
    by_version = models.archive_path(f"models:/{MODEL}/{version.version}", tmp_path / "by-version")
    assert by_run.name.endswith(".tar.gz") and by_run.stat().st_size > 0
    assert by_version.read_bytes() == by_run.read_bytes()
