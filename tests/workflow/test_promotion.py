"""Registration and promotion end to end on the demo data, against a real MLflow store.

One store, a sequence of workflow runs (light pipelines, so each run takes seconds):
first run promotes; a higher-F1 candidate failing a critical utterance is kept out; a better
candidate replaces production; a deliberately weaker one is kept; an unchanged champion is not
re-scored; rollback restores the previous version.
"""

import json

import mlflow
import pytest
from typer.testing import CliRunner

from nlu_mlflow import constants as c
from nlu_mlflow.cli import app
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow import manual as lifecycle
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings
from tests.helpers import CONFIGS, PIZZA, ROOT

pytestmark = pytest.mark.slow

FIXTURES = ROOT / "tests" / "data"
MODEL = "pizza-nlu"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("promotion")
    uri = f"sqlite:///{home / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    return home, uri


def run(store, configs, critical=None, **extra):
    home, uri = store
    values = {
        "data": PIZZA / "train.yml",
        "test_data": PIZZA / "test.yml",
        "configs": configs,
        "critical": critical,
        "epochs": 1,
        "tracking_uri": uri,
        "model_name": MODEL,
        "project_dir": home,
        "summary_json": home / "summary.json",
        "report_md": home / "report.md",
        **extra,
    }
    result = workflow.run(settings.build(values))
    return result, json.loads((home / "summary.json").read_text())


def production_stage_versions():
    return registry.versions_in_stage(MODEL, registry.STAGE_PRODUCTION)


@pytest.fixture(scope="module")
def history(store):
    """The sequence of runs; each later test inspects one step."""
    steps = {}
    steps["first"] = run(store, FIXTURES / "configs" / "weak_crf.yml")
    steps["critical_fail"] = run(
        store, FIXTURES / "configs" / "intents_only.yml", FIXTURES / "product_critical.yml"
    )
    steps["better"] = run(store, CONFIGS / "logreg_crf.yml", PIZZA / "critical.yml")
    steps["weaker"] = run(store, FIXTURES / "configs" / "weak_crf.yml")
    steps["weaker_again"] = run(store, FIXTURES / "configs" / "weak_crf.yml")
    return steps


def test_first_run_promotes(history):
    result, summary = history["first"]
    assert summary["decision"] == "promoted"
    assert result.outcome.version.version == "1"
    version = registry.get_version(MODEL, "1")
    assert version.tags[c.TAG_DECISION] == c.DECISION_PROMOTED
    assert version.tags[c.TAG_CONFIG] == "weak_crf"
    assert version.tags["source_run_id"] == result.best.run_id
    assert version.tags["primary_metric"] == c.INTENT_F1_WEIGHTED
    assert float(version.tags[c.INTENT_F1_WEIGHTED]) == pytest.approx(
        result.best.metrics[c.INTENT_F1_WEIGHTED], abs=1e-6
    )
    assert {"train_digest", "test_digest", "critical_digest", c.CRITICAL_PASS_RATE} <= set(version.tags)


def test_higher_f1_with_a_failing_critical_utterance_is_kept_out(history):
    first, _ = history["first"]
    result, summary = history["critical_fail"]
    [candidate] = result.candidates
    assert candidate.metrics[c.INTENT_F1_WEIGHTED] > first.best.metrics[c.INTENT_F1_WEIGHTED]
    assert candidate.metrics[c.CRITICAL_FAILURES] == 1
    assert result.selection.best is None
    assert summary["decision"] == c.DECISION_NONE
    assert "nothing registered: no candidate passes every critical utterance" in summary["message"]
    critical_table = mlflow.load_table(c.ARTIFACT_CRITICAL_TABLE, run_ids=[candidate.run_id])
    assert critical_table["reason"].str.contains("missing entity product").any()


def test_better_candidate_replaces_production_after_rescoring_it(history):
    first, _ = history["first"]
    result, summary = history["better"]
    assert summary["decision"] == "promoted"
    assert summary["champion"]["version"] == "1" and summary["champion"]["cached_scores"] is False
    parent = mlflow.get_run(result.run_id)
    # the champion was re-evaluated on this run's test data and suite: its numbers are logged here
    champion_f1 = parent.data.metrics["champion_" + c.INTENT_F1_WEIGHTED]
    assert champion_f1 == pytest.approx(first.best.metrics[c.INTENT_F1_WEIGHTED], abs=1e-9)
    assert "champion_" + c.CRITICAL_PASS_RATE in parent.data.metrics
    assert registry.alias_holder(MODEL).version == "2"
    assert registry.alias_holder(MODEL, c.ALIAS_PREVIOUS).version == "1"
    assert production_stage_versions() == ["2"]
    assert registry.get_version(MODEL, "1").stage == registry.STAGE_ARCHIVED
    assert parent.data.tags[c.TAG_DECISION] == c.DECISION_PROMOTED
    assert parent.data.tags[c.TAG_CHAMPION_VERSION] == "1"
    decision = json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/{c.ARTIFACT_DECISION}"))
    assert decision["checks"] and all(check["passed"] for check in decision["checks"])
    report = mlflow.artifacts.load_text(f"runs:/{result.run_id}/{c.ARTIFACT_COMPARISON}")
    assert "## Intent F1" in report and "## Entity F1" in report and "Critical utterances" in report
    assert "| `purchase` |" in report


def test_weaker_candidate_is_registered_but_kept(history):
    result, summary = history["weaker"]
    assert summary["decision"] == c.DECISION_KEPT
    assert result.outcome.version.version == "3"
    assert summary["message"].startswith("kept production version 2")
    assert registry.alias_holder(MODEL).version == "2"
    assert production_stage_versions() == ["2"]
    kept = registry.get_version(MODEL, "3")
    assert kept.tags[c.TAG_DECISION] == c.DECISION_KEPT
    assert "primary_metric FAILED" in kept.tags[c.TAG_DECISION_REASONS]
    assert float(kept.tags["nlu_mlflow.delta." + c.INTENT_F1_WEIGHTED]) < 0


def test_unchanged_champion_is_not_scored_twice(history):
    _, weaker = history["weaker"]
    _, again = history["weaker_again"]
    assert weaker["champion"]["cached_scores"] is False
    assert again["champion"]["cached_scores"] is True
    assert again["champion"]["metrics"] == weaker["champion"]["metrics"]
    assert registry.get_version(MODEL, "2").tags["nlu_mlflow.last_challenge"] == "kept against version 4"


@pytest.mark.usefixtures("history")
def test_rollback_restores_previous_and_is_recorded(store):
    _, uri = store
    runner = CliRunner()
    result = runner.invoke(app, ["rollback", "--model-name", MODEL, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "version 1 is in production again (was 2)" in result.output
    assert registry.alias_holder(MODEL).version == "1"
    assert registry.alias_holder(MODEL, c.ALIAS_PREVIOUS).version == "2"
    assert production_stage_versions() == ["1"]
    assert registry.get_version(MODEL, "1").tags[c.TAG_DECISION] == c.DECISION_ROLLBACK
    manual = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.{c.TAG_DECISION.replace('.', '_')} = 'x'"
    )
    assert manual.empty  # sanity: the filter syntax below is the one that matters
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{c.TAG_ROLE}` = 'manual'")
    assert len(runs) == 1 and runs.iloc[0][f"tags.{c.TAG_DECISION}"] == c.DECISION_ROLLBACK

    status = runner.invoke(app, ["status", "--model-name", MODEL, "--tracking-uri", uri])
    assert status.exit_code == 0
    assert f"{MODEL} version 1 is in production" in status.output
    assert "previous-production: version 2" in status.output


@pytest.mark.usefixtures("history")
def test_promote_command_applies_gates_unless_forced(store):
    _, uri = store
    runner = CliRunner()
    # version 3 (weak) against production: it has no scores on the same data as version 1? it does:
    # both were scored on the pizza test set without a suite, so the gates run and keep version 1 or 3
    gated = runner.invoke(app, ["promote", "3", "--model-name", MODEL, "--tracking-uri", uri])
    candidate, champion = lifecycle.common_scores(
        registry.get_version(MODEL, "3"), registry.get_version(MODEL, "1")
    )
    better = candidate["metrics"][c.INTENT_F1_WEIGHTED] > champion["metrics"][c.INTENT_F1_WEIGHTED]
    assert gated.exit_code == (0 if better else 3), gated.output
    forced = runner.invoke(app, ["promote", "2", "--force", "--model-name", MODEL, "--tracking-uri", uri])
    assert forced.exit_code == 0, forced.output
    assert registry.alias_holder(MODEL).version == "2"
    assert registry.get_version(MODEL, "2").tags[c.TAG_DECISION] == c.DECISION_FORCED
    assert "forced by" in registry.get_version(MODEL, "2").tags[c.TAG_DECISION_REASONS]
