"""Where the default store keeps its artifacts."""

import os

import mlflow

from nlu_mlflow.tracking import runs


def test_default_store_keeps_artifacts_in_mlartifacts_beside_it(tmp_path, monkeypatch):
    """MLflow's set_tracking_uri exports $MLFLOW_TRACKING_URI; the default store is recognised before that."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # restored by monkeypatch after MLflow overwrites it
    os.environ.pop("MLFLOW_TRACKING_URI")
    uri = runs.configure(None, "artifacts-here", tmp_path)
    assert uri == f"sqlite:///{tmp_path / 'mlruns.db'}"
    experiment = mlflow.get_experiment_by_name("artifacts-here")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
