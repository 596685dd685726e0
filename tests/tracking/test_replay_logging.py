"""The replay logged on a real MLflow store: figures, the masked flips table, the plot and the window."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from nlu_mlflow import constants as c
from nlu_mlflow.decide import replay
from nlu_mlflow.tracking.replay import CONFIDENCE_PLOT, LIVE_CONTEXT, log_replay

SECRET = "call me at alice@example.com"


def parse(intent: str, confidence: float = 0.9) -> dict:
    return {"intent": {"name": intent, "confidence": confidence}, "entities": []}


def test_replay_is_logged_without_live_text(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    traffic = replay.traffic_of([SECRET] * 3 + ["hi"] * 5, first_id=10, last_id=42)
    report = replay.compare(
        traffic,
        [parse("order"), parse("greet")],
        [parse("cancel"), parse("greet")],
        0.3,
        mask=lambda _: "call me at [EMAIL]",
    )
    with mlflow.start_run() as run:
        log_replay(report, traffic, "postgresql://rasa:pw@db/rasa", "7d", tmp_path)
    run = mlflow.get_run(run.info.run_id)
    assert run.data.metrics[c.LIVE_FLIP_RATE] == 3 / 8 and run.data.metrics[c.LIVE_MESSAGES] == 8
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.tags[0].value == LIVE_CONTEXT and dataset_input.dataset.digest == traffic.digest()
    assert "pw" not in dataset_input.dataset.source and "pw" not in dataset_input.dataset.profile
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {c.LIVE_FLIPS_TABLE, CONFIDENCE_PLOT} <= artifacts
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=c.LIVE_FLIPS_TABLE, dst_path=str(tmp_path / "dl")
    )
    table = json.loads(Path(path).read_text())
    assert table["data"] == [["order", "cancel", 3, 1, False, "call me at [EMAIL]"]]
    everything = json.dumps(
        [run.data.params, run.data.tags, table, dataset_input.dataset.schema, dataset_input.dataset.profile]
    )
    assert "alice@example.com" not in everything
