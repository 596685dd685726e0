"""The whole train -> evaluate -> log loop on the demo data, with a real MLflow store (trained once)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import finetune, pipelines
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.workflow import run as workflow
from tests.helpers import CONFIGS, PIZZA, ROOT
from tests.helpers.compare import rasa_test_nlu

pytestmark = pytest.mark.slow

HEADLINE = [
    c.INTENT_ACCURACY,
    c.INTENT_F1_WEIGHTED,
    c.INTENT_F1_MACRO,
    c.INTENT_PRECISION_WEIGHTED,
    c.INTENT_RECALL_WEIGHTED,
    c.ENTITY_F1_WEIGHTED,
    c.ENTITY_PRECISION_WEIGHTED,
    c.ENTITY_RECALL_WEIGHTED,
    c.TRAIN_SECONDS,
    c.EVAL_SECONDS,
    c.MODEL_SIZE_MB,
]


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory):
    """One workflow run: the light pipeline and DIET (3 epochs) on the pizza data."""
    home = tmp_path_factory.mktemp("workflow")
    configs = home / "configs"
    configs.mkdir()
    for name in ("logreg_crf.yml", "diet.yml"):
        shutil.copy(CONFIGS / name, configs / name)
    uri = f"sqlite:///{home / 'mlruns.db'}"
    settings = workflow.WorkflowSettings(
        data=PIZZA / "train.yml",
        test_data=PIZZA / "test.yml",
        configs=configs,
        epochs=3,
        tracking_uri=uri,
        project_dir=home,
    )
    result = workflow.run(settings)
    return result, mlflow.MlflowClient(uri), home


@pytest.fixture()
def demo_run(workflow_run):
    """The workflow run, with MLflow's fluent API on its store and experiment (conftest restores it after each test)."""
    result, client, _ = workflow_run
    mlflow.set_tracking_uri(result.tracking_uri)
    mlflow.set_experiment(experiment_id=client.get_run(result.run_id).info.experiment_id)
    return workflow_run


def children(client, parent_id):
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_id}'",
        order_by=["attributes.run_name"],
    )


def test_one_parent_and_one_finished_child_per_config(demo_run):
    result, client, _ = demo_run
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[c.TAG_ROLE] == c.ROLE_WORKFLOW
    runs = children(client, result.run_id)
    assert [r.info.run_name for r in runs] == ["diet", "logreg_crf"]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_child_logs_fixed_metric_names_and_per_label_scores(demo_run, pizza_test):
    result, client, _ = demo_run
    for run in children(client, result.run_id):
        metrics = run.data.metrics
        assert set(HEADLINE) <= set(metrics), sorted(set(HEADLINE) - set(metrics))
        intents = {m.get("intent") for m in pizza_test.examples}
        assert {f"intent_f1/{i}" for i in intents} <= set(metrics)
        assert "entity_f1/product" in metrics
        assert any(k.startswith(c.EXTRACTOR_F1_PREFIX) for k in metrics)
        assert metrics[c.TRAIN_SECONDS] > 0 and metrics[c.MODEL_SIZE_MB] > 0


def test_child_params_and_tags(demo_run, pizza_train, pizza_test):
    result, client, _ = demo_run
    run = next(r for r in children(client, result.run_id) if r.info.run_name == "diet")
    params, tags = run.data.params, run.data.tags
    diet_index = next(k for k, v in params.items() if v == "DIETClassifier" and k.count(".") == 1)
    assert params[f"{diet_index}.DIETClassifier.epochs"] == "3"
    assert params["config_file"] == "diet.yml"
    assert params["config_digest"] == finetune.config_digest(
        pipelines.load(CONFIGS / "diet.yml", epochs=3, seed=42)
    )
    assert params["train_digest"] == pizza_train.digest
    assert params["test_digest"] == pizza_test.digest
    assert params["seed"] == "42"
    assert tags[c.TAG_RASA_VERSION] == "3.6.21"
    assert tags[c.TAG_TENSORFLOW_VERSION].startswith("2.12")
    assert tags[c.TAG_MLFLOW_VERSION] == mlflow.__version__
    assert tags[c.TAG_CONFIG] == "diet"


def test_child_artifacts_reports_plots_archive_and_table(demo_run):
    result, client, _ = demo_run
    run = next(r for r in children(client, result.run_id) if r.info.run_name == "logreg_crf")
    reports = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, c.ARTIFACT_REPORTS)}
    assert {
        "intent_report.json",
        "intent_errors.json",
        "intent_confusion_matrix.png",
        "intent_histogram.png",
        "CRFEntityExtractor_report.json",
        "CRFEntityExtractor_errors.json",
        "CRFEntityExtractor_confusion_matrix.png",
    } <= reports
    # the Rasa archive travels inside the logged pyfunc model
    archives = [a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts")]
    assert archives == ["model/artifacts/logreg_crf.tar.gz"]
    table = mlflow.load_table(c.ARTIFACT_PREDICTIONS_TABLE, run_ids=[run.info.run_id])
    assert len(table) == 80
    assert {"text", "intent", "predicted_intent", "confidence", "intent_correct"} <= set(table.columns)
    accuracy = run.data.metrics[c.INTENT_ACCURACY]
    assert table["intent_correct"].mean() == pytest.approx(accuracy)


def test_train_and_test_data_are_dataset_inputs_with_digests(demo_run, pizza_train, pizza_test):
    result, client, _ = demo_run
    run = children(client, result.run_id)[0]
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert inputs["train"].dataset.digest == pizza_train.digest
    assert inputs["test"].dataset.digest == pizza_test.digest
    contexts = {name: {t.value for t in d.tags} for name, d in inputs.items()}
    assert contexts == {"train": {"training"}, "test": {"evaluation"}}


def test_best_candidate_is_marked_and_summary_lists_all(demo_run):
    result, client, _ = demo_run
    best = max(result.candidates, key=lambda x: x.metrics[c.INTENT_F1_WEIGHTED])
    assert result.selection.best == best.name
    parent = client.get_run(result.run_id)
    assert parent.data.tags[c.TAG_BEST] == best.name
    assert client.get_run(best.run_id).data.tags[c.TAG_BEST] == "true"
    assert "**Best**" in parent.data.tags[c.MLFLOW_RUN_NOTE]
    table = workflow.summary_table(result, c.INTENT_F1_WEIGHTED)
    assert table.loc[table["best"] == "*", "config"].tolist() == [best.name]


def test_logged_numbers_equal_rasa_test_nlu(demo_run, tmp_path):
    """Run `rasa test nlu` on the logged DIET archive: every report number equals what was logged."""
    result, client, _ = demo_run
    run = next(r for r in children(client, result.run_id) if r.info.run_name == "diet")
    archive = pyfunc_model.archive_path(f"runs:/{run.info.run_id}/model", tmp_path / "model")
    intent_report, entity_report = rasa_test_nlu(archive, PIZZA / "test.yml", tmp_path)
    logged = run.data.metrics
    assert logged[c.INTENT_F1_WEIGHTED] == pytest.approx(intent_report["weighted avg"]["f1-score"], abs=1e-9)
    assert logged[c.INTENT_F1_MACRO] == pytest.approx(intent_report["macro avg"]["f1-score"], abs=1e-9)
    assert logged[c.INTENT_PRECISION_WEIGHTED] == pytest.approx(
        intent_report["weighted avg"]["precision"], abs=1e-9
    )
    for intent, scores in intent_report.items():
        if isinstance(scores, dict) and "avg" not in intent:
            assert logged[f"intent_f1/{intent}"] == pytest.approx(scores["f1-score"], abs=1e-9)
    assert logged[c.ENTITY_F1_WEIGHTED] == pytest.approx(entity_report["weighted avg"]["f1-score"], abs=1e-9)
    assert logged[c.ENTITY_RECALL_WEIGHTED] == pytest.approx(
        entity_report["weighted avg"]["recall"], abs=1e-9
    )
    logged_report = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "reports/intent_report.json", str(tmp_path))
        ).read_text()
    )
    assert_reports_equal(logged_report, intent_report)


def assert_reports_equal(ours, theirs, tolerance=1e-9):
    """Equal up to float summation order (Rasa's importer may load examples in another order)."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs)
        for key in theirs:
            assert_reports_equal(ours[key], theirs[key], tolerance)
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, abs=tolerance)
    elif isinstance(theirs, list):
        assert sorted(map(str, ours)) == sorted(map(str, theirs))
    else:
        assert ours == theirs


def test_mlflow_run_train_entry_point(tmp_path):
    """`mlflow run . -e train --env-manager local` logs a finished parent with the config as child."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "RASA_TELEMETRY_ENABLED": "false"}
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):  # left by earlier in-process runs
        env.pop(name, None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    mlflow.MlflowClient(uri).create_experiment(
        "mlproject-test", artifact_location=(tmp_path / "art").as_uri()
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(ROOT),
            "-e",
            "train",
            "--env-manager",
            "local",
            "--experiment-name",
            "mlproject-test",
            "-P",
            "epochs=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,  # as users do: `mlflow run .`
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("mlproject-test")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted((r.info.run_name == "logreg_crf", r.info.status) for r in runs)[-1] == (True, "FINISHED")
    parent = next(r for r in runs if r.info.run_name != "logreg_crf")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags.get("mlflow.project.entryPoint") == "train"
    assert load_nlu(PIZZA / "test.yml").digest == parent.data.params["test_digest"]
