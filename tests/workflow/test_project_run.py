"""`nlu-mlflow run --project` on real Rasa projects as their teams keep them (../shared/projects): every
candidate a whole assistant, NLU and dialogue metrics, the test conversations as a gate, a registered full model.
Epochs capped at 2 and the light pipeline beside the project's own config, so it trains in minutes."""

from __future__ import annotations

import json

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.rasa.archive import archive_training_type
from nlu_mlflow.tracking import models, registry
from tests.helpers import CONFIGS, SHARED_PROJECTS
from tests.helpers.cli import invoke

pytestmark = pytest.mark.slow

MODEL = "helpdesk"


def project_args(home, project, *extra) -> list[str]:
    return [
        "run", "--project", str(project), "--configs", str(CONFIGS / "logreg_crf.yml"), "--epochs", "2",
        "--tracking-uri", f"sqlite:///{home / 'mlruns.db'}", "--lock-file", str(home / "run.lock"),
        "--model-name", MODEL, "--summary-json", str(home / "summary.json"), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory):
    home = tmp_path_factory.mktemp("helpdesk")
    # the tiny epoch cap fails test conversations; the gate is lowered so a version gets registered
    result = invoke(
        project_args(home, SHARED_PROJECTS / "helpdesk-assistant", "--min-conversation-pass-rate", "0")
    )
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlruns.db'}")
    return result, home, json.loads((home / "summary.json").read_text())


def candidate_runs(summary: dict) -> dict:
    parent = mlflow.get_run(summary["run_id"])
    found = mlflow.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    return {r.info.run_name: r for r in found}


def test_helpdesk_project_run_completes_with_both_candidates(helpdesk):
    result, _, summary = helpdesk
    assert result.exit_code == 0, result.output
    runs = candidate_runs(summary)
    assert set(runs) == {"project", "logreg_crf"}
    for run in runs.values():
        assert run.info.status == "FINISHED"
        metrics = run.data.metrics
        for name in (
            c.INTENT_F1_WEIGHTED,
            c.CORE_CONVERSATION_ACCURACY,
            c.CORE_ACTION_F1_WEIGHTED,
            c.CORE_ACTION_ACCURACY,
        ):
            assert name in metrics, (run.info.run_name, name)
        assert any(k.startswith(c.CORE_ACTION_F1_PREFIX) for k in metrics)
        assert run.data.params["policies.01"] == "TEDPolicy"
        assert run.data.params["policies.01.TEDPolicy.epochs"] == "2"
        assert {"domain_digest", "stories_digest", "test_stories_digest", "data_digest"} <= set(
            run.data.params
        )
        names = {d.dataset.name for d in run.inputs.dataset_inputs}
        assert names == {"train", "test", "domain", "stories", "test_stories"}


def test_conversations_are_logged_and_gate_the_decision(helpdesk):
    _, _, summary = helpdesk
    run = candidate_runs(summary)["project"]
    table = mlflow.load_table(c.ARTIFACT_CONVERSATIONS_TABLE, run_ids=[run.info.run_id])
    assert len(table) == 12  # the helpdesk's tests/test_conversations.yml
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, c.ARTIFACT_REPORTS)}
    assert {
        "reports/story_report.json",
        "reports/failed_test_stories.yml",
        "reports/story_confusion_matrix.png",
    } <= artifacts
    [gate] = [x for x in summary["checks"] if x["name"] == "conversation_pass_rate"]
    assert gate["passed"] and "needs >= 0.0000" in gate["reason"]


def test_registered_version_is_a_full_assistant(helpdesk, tmp_path):
    _, _, summary = helpdesk
    assert summary["decision"] == c.DECISION_PROMOTED
    version = registry.get_version(MODEL, summary["candidate"]["version"])
    assert version.tags[c.TAG_HAS_CORE] == "true"
    archive = models.archive_path(version.uri, tmp_path)
    assert archive_training_type(archive) == "both"


def test_default_gate_requires_every_conversation(helpdesk):
    """Without the lowered gate, a candidate that fails a test conversation is never the best."""
    from nlu_mlflow.decide.selection import select_best

    _, _, summary = helpdesk
    runs = candidate_runs(summary)
    scores = {name: run.data.metrics for name, run in runs.items()}
    failing = {n for n, s in scores.items() if s[c.CORE_CONVERSATION_ACCURACY] < 1.0}
    chosen = select_best(scores, c.INTENT_F1_WEIGHTED, 1.0, 1.0)
    assert chosen.best not in failing
    assert all("test conversation(s)" in chosen.reasons[n] for n in failing)
