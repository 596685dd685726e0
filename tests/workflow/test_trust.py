"""Unattended promotion a team can trust (issue 13): the decision is recorded before production moves,
the score cache lives in run artifacts, a manual promote applies the workflow's gates on the newest common
scores, a production model that can no longer be scored stops the run without registering anything, the
summary file is written on every exit path, and evaluation works inside a running event loop.

Light pipelines on the pizza data and a real SQLite MLflow store; each test has its own store."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide import score_record
from nlu_mlflow.rasa import scoring
from nlu_mlflow.tracking import registry, score_cache
from tests.helpers import CONFIGS, PIZZA, ROOT
from tests.helpers.cli import invoke, run_args

FIXTURES = ROOT / "tests" / "data" / "configs"
LIGHT = CONFIGS / "logreg_crf.yml"
WEAK = FIXTURES / "weak_crf.yml"


def cli_run(tmp_path, uri, configs=LIGHT, test_data=PIZZA / "test.yml"):
    summary = tmp_path / "summary.json"
    result = invoke(
        run_args(tmp_path, uri, test_data=test_data, configs=configs) + ["--summary-json", str(summary)]
    )
    data = json.loads(summary.read_text()) if summary.is_file() else None
    return result, data


@pytest.mark.slow
def test_decision_is_recorded_before_production_moves(tmp_path, tracking_uri, monkeypatch):
    """Item 6: a crash between the record and the move leaves the decision on record, marked as not carried
    out, and production where it was (the move is replaced by a failing function to simulate the crash)."""
    first, _ = cli_run(tmp_path, tracking_uri, WEAK)
    assert first.exit_code == 0, first.output

    def crash(_name, _version):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(registry, "move_production", crash)
    crashed, summary = cli_run(tmp_path, tracking_uri, LIGHT)
    assert crashed.exit_code != 0
    mlflow.set_tracking_uri(tracking_uri)
    assert registry.alias_holder("rasa-nlu").version == "1"
    version = registry.get_version("rasa-nlu", "2")
    assert version.tags[c.TAG_DECISION] == c.DECISION_PROMOTED
    assert "primary_metric passed" in version.tags[c.TAG_DECISION_REASONS]
    assert version.tags[c.TAG_CHAMPION_VERSION] == "1" and c.TAG_PROMOTED_AT not in version.tags
    run_id = version.tags[c.TAG_DECISION_RUN]
    decision = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{c.ARTIFACT_DECISION}"))
    assert decision["decision"] == c.DECISION_PROMOTED and decision["production_moved"] is False
    assert mlflow.get_run(run_id).data.tags.get(c.TAG_PRODUCTION_MOVED) is None
    assert summary["decision"] == c.DECISION_FAILED and "the process died here" in summary["error"]


@pytest.mark.slow
def test_moved_production_is_marked_and_named(tmp_path, tracking_uri):
    """Items 6 and 8: after the move the record says so; the parent run's name says what happened; the
    version has a description; the score cache is a run artifact behind a short tag."""
    result, summary = cli_run(tmp_path, tracking_uri, LIGHT)
    assert result.exit_code == 0, result.output
    mlflow.set_tracking_uri(tracking_uri)
    parent = mlflow.get_run(summary["run_id"])
    assert parent.data.tags[c.TAG_PRODUCTION_MOVED] == "true"
    assert parent.info.run_name == f"{summary['decided_at'][:10]} promoted v1 (logreg_crf)"
    version = registry.get_version("rasa-nlu", "1")
    assert c.TAG_PROMOTED_AT in version.tags
    description = mlflow.MlflowClient().get_model_version("rasa-nlu", "1").description
    assert "**Config**: logreg_crf" in description and "intent_f1_weighted" in description
    assert "primary_metric passed" in description
    [key] = [k for k in version.tags if k.startswith(score_cache.SCORES_TAG_PREFIX)]
    assert len(version.tags[key]) < 200  # a reference, not the scores
    reference = json.loads(version.tags[key])
    assert reference["run_id"] == summary["candidate"]["run_id"]
    cached = score_cache.load(version, key)
    assert cached["metrics"][c.INTENT_F1_WEIGHTED] == pytest.approx(
        summary["candidate"]["metrics"][c.INTENT_F1_WEIGHTED]
    )
    assert len(cached["correct"]) == 80 and sum(cached["intent_support"].values()) == 80


@pytest.mark.slow
def test_unusable_champion_keeps_production_and_registers_nothing(tmp_path, tracking_uri):
    """Item 10: production's artifacts are gone; the run says why, exits 5, and does not register a new
    undecided version, tonight or the next night."""
    first, _ = cli_run(tmp_path, tracking_uri, WEAK)
    assert first.exit_code == 0, first.output
    mlflow.set_tracking_uri(tracking_uri)
    source = mlflow.MlflowClient().get_model_version("rasa-nlu", "1").source  # models:/<logged model id>
    model = mlflow.get_logged_model(source.removeprefix("models:/"))
    shutil.rmtree(Path(model.artifact_location.removeprefix("file://")))
    # other test data than version 1 was scored on, so its scores are not in the cache and it must be loaded
    test = tmp_path / "test.yml"
    test.write_text((PIZZA / "test.yml").read_text().replace("    - hullo\n", ""))
    for night in (1, 2):
        result, summary = cli_run(tmp_path, tracking_uri, LIGHT, test)
        assert result.exit_code == 5, (night, result.output[-3000:])
        assert "production version 1 of 'rasa-nlu' cannot be scored" in result.output
        assert "production stays as it is and no new version was registered" in result.output
        assert summary["decision"] == c.DECISION_FAILED and summary["run_id"]
        parent = mlflow.get_run(summary["run_id"])
        assert parent.info.status == "FAILED"
        assert parent.data.tags[c.TAG_DECISION] == c.DECISION_FAILED
        assert parent.info.run_name.endswith(" failed")
    assert registry.alias_holder("rasa-nlu").version == "1"
    assert [str(v.version) for v in mlflow.MlflowClient().search_model_versions("name='rasa-nlu'")] == ["1"]


def test_summary_is_written_on_every_exit_path(tmp_path, tracking_uri):
    """Item 11: cron never reads last night's success: bad input leaves a failed summary with the error."""
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"decision": "promoted", "message": "last night"}))
    bad = tmp_path / "bad.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: [\n')
    result = invoke(run_args(tmp_path, tracking_uri, data=bad) + ["--summary-json", str(summary)])
    assert result.exit_code == 2
    data = json.loads(summary.read_text())
    assert data["decision"] == c.DECISION_FAILED and "bad.yml: not readable as Rasa NLU data" in data["error"]
    assert data["production_moved"] is False


def _version_with_scores(name: str, run_name: str, records: dict[str, dict]) -> registry.Version:
    """A registered version whose score cache holds ``records`` (key -> scores record); the model is a
    placeholder file: the manual gates read only cached scores."""
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    version = registry.register(f"runs:/{run.info.run_id}/model", name, {})
    for key, record in records.items():
        reference = score_cache.save(run.info.run_id, key, record)
        score_cache.tag_version(version, key, reference)
    return registry.get_version(name, version.version)


def _record(f1: dict[str, float], correct: dict[str, bool], at: str) -> dict:
    metrics = {
        c.INTENT_F1_WEIGHTED: sum(f1.values()) / len(f1),
        **{f"intent_f1/{k}": v for k, v in f1.items()},
    }
    return score_record.record(metrics, correct, {"greet": 10, "order": 10}, {"test": "t"}, at)


def test_manual_promote_uses_the_newest_common_scores(tracking_uri):
    """Item 3: of the test sets both versions were scored on, the most recent one decides (not the lexically
    largest digest: 'ffff' sorts after 'aaaa' but was measured earlier)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("manual")
    old, new = score_cache.cache_key("ffff", None), score_cache.cache_key("aaaa", None)
    january, june = "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"
    champion = _version_with_scores(
        "m",
        "champion",
        {
            old: _record({"greet": 0.5, "order": 0.5}, {}, january),
            new: _record({"greet": 0.9, "order": 0.9}, {}, june),
        },
    )
    registry.move_production("m", champion.version)
    candidate = _version_with_scores(
        "m",
        "candidate",
        {
            old: _record({"greet": 0.9, "order": 0.9}, {}, january),
            new: _record({"greet": 0.8, "order": 0.8}, {}, june),
        },
    )
    result = invoke(["promote", candidate.version, "--model-name", "m", "--tracking-uri", tracking_uri])
    assert result.exit_code == 3, result.output
    assert "primary_metric FAILED: intent_f1_weighted 0.8000 vs champion 0.9000" in result.output
    assert registry.alias_holder("m").version == champion.version


def test_manual_promote_applies_the_same_significance_test(tmp_path, tracking_uri):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("manual")
    key, at = score_cache.cache_key("t", None), "2026-06-01T00:00:00+00:00"
    examples = [f"ex{i}" for i in range(20)]
    same = dict.fromkeys(examples, True)
    champion = _version_with_scores("s", "champion", {key: _record({"greet": 0.9, "order": 0.9}, same, at)})
    registry.move_production("s", champion.version)
    reordered = dict(reversed(list(same.items())))  # the same examples, another order: paired by identity
    candidate = _version_with_scores(
        "s", "candidate", {key: _record({"greet": 0.95, "order": 0.95}, reordered, at)}
    )
    workflow_file = tmp_path / "wf.yml"
    workflow_file.write_text("promotion:\n  significance_alpha: 0.05\n")
    args = ["promote", candidate.version, "--model-name", "s", "--tracking-uri", tracking_uri]
    assert invoke(args).exit_code == 0  # without the test in the policy, the gain is enough
    registry.move_production("s", champion.version)
    gated = invoke([*args, "--workflow", str(workflow_file)])
    assert gated.exit_code == 3, gated.output
    assert "significance FAILED: McNemar: candidate right only on 0, champion right only on 0" in gated.output


def test_manual_promote_guards_intents_with_enough_test_examples(tracking_uri):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("manual")
    key = score_cache.cache_key("t", None)
    at = "2026-06-01T00:00:00+00:00"
    champion = _version_with_scores("g", "champion", {key: _record({"greet": 0.9, "order": 0.9}, {}, at)})
    registry.move_production("g", champion.version)
    candidate = _version_with_scores("g", "candidate", {key: _record({"greet": 1.0, "order": 0.85}, {}, at)})
    result = invoke(["promote", candidate.version, "--model-name", "g", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output  # order lost 0.05 < 0.10: within the guard
    worse = _version_with_scores("g", "worse", {key: _record({"greet": 1.0, "order": 0.7}, {}, at)})
    result = invoke(["promote", worse.version, "--model-name", "g", "--tracking-uri", tracking_uri])
    assert result.exit_code == 3
    assert "intent_regression FAILED: intent_f1/order 0.7000 vs champion 0.8500" in result.output


def test_scoring_works_inside_a_running_event_loop(logreg_model, pizza_test, tmp_path):
    """Item 12: a notebook cell runs an event loop; evaluating a model from it must not fail."""

    async def notebook_cell():
        return scoring.score_archive(logreg_model.archive, pizza_test, None, ["CRFEntityExtractor"], tmp_path)

    scores = asyncio.run(notebook_cell())
    assert scores.metrics[c.INTENT_F1_WEIGHTED] > 0.5
    assert len(scores.correct) == len(pizza_test.examples)


@pytest.mark.parametrize("command", [["promote", "2", "--force"], ["rollback"]])
def test_manual_moves_are_recorded_before_production_moves(tracking_uri, monkeypatch, command):
    """Item 6 for `promote` and `rollback`: the move crashes (injected, as a killed process would leave it)
    after the record: the manual run and its decision.json exist, marked as not moved, the version carries the
    decision, and production stays where it was."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("manual")
    first = _version_with_scores("r", "first", {})
    second = _version_with_scores("r", "second", {})
    registry.move_production("r", first.version)
    if command == ["rollback"]:
        registry.move_production("r", second.version)
    holder = registry.alias_holder("r").version

    def crash(_name, _version):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(registry, "move_production", crash)
    result = invoke([*command, "--model-name", "r", "--tracking-uri", tracking_uri])
    assert result.exit_code != 0
    assert registry.alias_holder("r").version == holder
    [run] = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`{c.TAG_ROLE}` = '{c.ROLE_MANUAL}'",
        output_format="list",
    )
    decision = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{c.ARTIFACT_DECISION}"))
    target = "2" if command[0] == "promote" else "1"
    assert decision["version"] == target and decision["production_moved"] is False
    assert c.TAG_PRODUCTION_MOVED not in run.data.tags
    tags = registry.get_version("r", target).tags
    assert tags[c.TAG_DECISION] in (c.DECISION_FORCED, c.DECISION_ROLLBACK)
    assert c.TAG_PROMOTED_AT not in tags
