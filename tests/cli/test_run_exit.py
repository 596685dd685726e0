"""`run` is an adapter: the workflow (``workflow.launch``) writes the summary file and tells the team on every
exit path; the command line maps the error behind a stop to its exit status through one table."""

from __future__ import annotations

import json

import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.cli import main
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow.candidates import CandidateFailed
from nlu_mlflow.workflow.champion import ChampionUnusable
from nlu_mlflow.workflow.lock import LockedError
from nlu_mlflow.workflow.remote import RemoteDataError
from tests.helpers.cli import invoke
from tests.helpers.servers import slack_sink


@pytest.mark.parametrize(
    "kind, status",
    [
        (InputError, 2),
        (ChampionUnusable, 5),
        (AccessError, 77),  # a TrackingError, but the more specific entry wins
        (RegistryError, 1),
        (RemoteDataError, 1),
        (TrackingError, 1),
        (CandidateFailed, 1),
        (LockedError, 75),
        (KeyError, 1),
    ],
)
def test_one_table_maps_each_error_to_the_documented_exit_status(kind, status):
    assert main.exit_status(kind.__new__(kind), main.EXIT_STATUS) == status


def test_a_refused_registry_call_is_bad_input_for_the_manual_commands():
    assert main.exit_status(RegistryError.__new__(RegistryError), main.MANUAL_EXIT_STATUS) == 2


def test_a_bad_workflow_file_fails_the_summary_and_tells_the_team(tmp_path):
    """The summary path comes from the workflow file itself, whose other key is what is wrong."""
    workflow = tmp_path / "wf.yml"
    workflow.write_text("project: p\nsummary_json: summary.json\nepohcs: 3\n")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"decision": "promoted", "message": "last night"}))
    with slack_sink() as sink:
        result = invoke(
            ["run", "--workflow", str(workflow), "--lock-file", str(tmp_path / "run.lock")],
            env={"NLU_MLFLOW_SLACK_URL": sink.url},
        )
    sentence = f"{workflow}: unknown setting 'epohcs'; did you mean 'epochs'?"
    assert result.exit_code == 2, result.output
    assert f"error: {sentence}" in result.output
    data = json.loads(summary.read_text())
    assert data["decision"] == c.DECISION_FAILED and data["error"] == sentence
    assert data["model_name"] == "rasa-assistant"  # a project: the same default the run would use
    assert sink.texts() == [f"nlu-mlflow run FAILED: {sentence}"]


def test_without_a_webhook_nothing_is_posted_and_the_summary_still_fails(tmp_path, monkeypatch):
    monkeypatch.delenv("NLU_MLFLOW_SLACK_URL", raising=False)
    summary = tmp_path / "s.json"
    args = ["run", "--data", "x.yml", "--epochs", "-1", "--summary-json", str(summary)]
    result = invoke(args + ["--lock-file", str(tmp_path / "run.lock")])
    assert result.exit_code == 2, result.output
    assert json.loads(summary.read_text())["error"].startswith("command line: --epochs -1 must be")
