"""Two hosts promote against one shared tracking server (issue 13 item 5; docs/shared-server.md).

The per-host lock (`--lock-file`, one per working folder) does not keep two CI runners or Kubernetes jobs
apart. What does: the orchestrator re-reads the `production` holder right before it moves the alias and,
when another host moved it since the champion was scored, scores the new holder on its own data and decides
again (``workflow.run._move``).

Set-up, all real: a PostgreSQL cluster and an `mlflow server` (the server's own MLflow, `.server-venv`)
started here; workflow A runs in this process in working folder `host-a` (the CLI, in process); workflow B is
another process, `nlu-mlflow run` in working folder `host-b`, each with its own default lock file.

The interleaving is made deterministic by a pause, not a mock: ``record.record_decision`` is wrapped so that
right after A's first decision is really recorded, and before A re-reads the holder, A waits until B has run
to completion (B registers and promotes its version). Then A goes on unchanged: it finds production moved,
re-scores B's version on A's own data (only the strong side runs the critical suite, so the scores B cached on
its version are not for A's data) and decides again.

- A better (A: configs/logreg_crf.yml, B: the weak fixture): A promotes over B; A's record names B's
  version as the champion it was compared with, with `rechecks: 1`; B's version keeps B's record.
- B better (A: weak, B: logreg_crf): A keeps production on B's version; A's version is not promoted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow import record
from tests.helpers import CONFIGS, PIZZA, ROOT, TEST_DATA, servers
from tests.helpers.cli import invoke

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STRONG, WEAK = CONFIGS / "logreg_crf.yml", TEST_DATA / "configs" / "weak_crf.yml"
NLU_MLFLOW = Path(sys.executable).parent / "nlu-mlflow"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """PostgreSQL and `mlflow server` on it, shared by both cases (one model each); one worker is enough:
    A waits while B runs, so no two requests overlap."""
    if servers.postgres_bin() is None:
        pytest.fail(
            "PostgreSQL is not installed: run `bash scripts/install-postgres.sh` (Debian's packages)."
        )
    home = tmp_path_factory.mktemp("cross_host")
    previous = mlflow.get_tracking_uri()
    with (
        servers.postgres() as store,
        servers.mlflow_server(store, home / "artifacts", home / "server.log", workers=1) as url,
    ):
        yield url
    mlflow.set_tracking_uri(previous)


def run_args(folder: Path, url: str, model: str, config: Path, critical: bool) -> list[str]:
    """`nlu-mlflow run` as a host runs it: its own working folder, default lock file, summary file there."""
    configs = folder / "configs"
    configs.mkdir(parents=True)
    (configs / config.name).write_text(config.read_text())
    args = ["run", "--data", str(PIZZA / "train.yml"), "--test-data", str(PIZZA / "test.yml")]
    args += ["--critical", str(PIZZA / "critical.yml")] if critical else []
    args += ["--configs", str(configs), "--epochs", "1", "--tracking-uri", url, "--model-name", model]
    return [*args, "--summary-json", str(folder / "summary.json")]


def host_env() -> dict[str, str]:
    """Host B's environment: this checkout's package, no tracking settings or logins of the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**env, "RASA_TELEMETRY_ENABLED": "false", "PATH": f"{NLU_MLFLOW.parent}:{env['PATH']}"}


def run_host_b(folder: Path, args: list[str]) -> dict:
    done = subprocess.run(
        [str(NLU_MLFLOW), *args], cwd=folder, env=host_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "summary.json").read_text())


def race(tmp_path, monkeypatch, url: str, model: str, a_config: Path, b_config: Path) -> dict:
    """A decides and records, pauses while B runs to completion, then goes on. Returns both summaries,
    A's first (pre-pause) outcome and A's exit code."""
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    # the strong pipeline runs with the critical suite, the weak one without: A's and B's test data differ,
    # so the scores B cached on its version are not for A's data and A must score B's version itself
    args_a = run_args(host_a, url, model, a_config, critical=a_config == STRONG)
    args_b = run_args(host_b, url, model, b_config, critical=b_config == STRONG)
    first: list = []
    record_decision = record.record_decision

    def pause_after_first_decision(result, settings):
        record_decision(result, settings)  # the real record, written to the server
        if not first:  # A's first decision is on record; A now waits here while host B runs
            first.append(result.outcome)
            first.append(run_host_b(host_b, args_b))

    monkeypatch.setattr(record, "record_decision", pause_after_first_decision)
    monkeypatch.chdir(host_a)  # A's working folder: its lock file and nothing else go there
    result = invoke(args_a)
    monkeypatch.undo()
    assert len(first) == 2, f"A paused and B completed? {result.exception!r} {result.output[-3000:]}"
    summary_a = json.loads((host_a / "summary.json").read_text())
    assert (host_a / ".nlu-mlflow.lock").exists() and (host_b / ".nlu-mlflow.lock").exists()  # two hosts
    return {
        "a": summary_a,
        "b": first[1],
        "a_first": first[0],
        "a_exit": result.exit_code,
        "output": result.output,
    }


def decision_json(run_id: str) -> dict:
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{c.ARTIFACT_DECISION}")


def stages(model: str) -> dict[str, str]:
    versions = mlflow.MlflowClient().search_model_versions(f"name='{model}'")
    return {str(v.version): v.current_stage for v in versions}


def test_a_better_after_recheck_promotes_over_b(server, tmp_path, monkeypatch):
    model = "cross-host-a-wins"
    got = race(tmp_path, monkeypatch, server, model, STRONG, WEAK)
    a, b = got["a"], got["b"]
    assert got["a_exit"] == 0, got["output"][-3000:]
    # A registered first (version 1) and first decided against no production at all
    assert got["a_first"].promoted and got["a_first"].champion is None
    assert (a["candidate"]["version"], b["candidate"]["version"]) == ("1", "2")
    # B promoted its version meanwhile; A then re-scored it on A's data (with A's suite) and decided again
    assert (b["decision"], b["champion"], b["production_moved"]) == (c.DECISION_PROMOTED, None, True)
    assert (a["decision"], a["rechecks"], a["production_moved"]) == (c.DECISION_PROMOTED, 1, True)
    assert a["champion"]["version"] == "2" and a["champion"]["cached_scores"] is False
    assert a["replaced_version"] == "2"
    assert a["candidate"]["metrics"][c.INTENT_F1_WEIGHTED] > a["champion"]["metrics"][c.INTENT_F1_WEIGHTED]
    # the records on the server say the same: decision.json of each parent run, the version tags
    mlflow.set_tracking_uri(server)
    assert decision_json(a["run_id"])["champion"]["version"] == "2"
    assert decision_json(a["run_id"])["rechecks"] == 1
    assert decision_json(b["run_id"])["champion"] is None
    v1, v2 = registry.get_version(model, "1"), registry.get_version(model, "2")
    assert v1.tags[c.TAG_DECISION_RUN] == a["run_id"] and v1.tags[c.TAG_CHAMPION_VERSION] == "2"
    assert v1.tags[c.TAG_DECISION] == c.DECISION_PROMOTED and c.TAG_PROMOTED_AT in v1.tags
    # B's version keeps B's own record; A only adds that it was challenged and replaced
    assert v2.tags[c.TAG_DECISION_RUN] == b["run_id"] and v2.tags[c.TAG_DECISION] == c.DECISION_PROMOTED
    assert c.TAG_CHAMPION_VERSION not in v2.tags and c.TAG_PROMOTED_AT in v2.tags
    assert v2.tags["nlu_mlflow.last_challenge_run_id"] == a["run_id"]
    assert v2.tags["nlu_mlflow.last_challenge"] == "replaced by version 1"
    # production on A's version, B's the previous one; one version in stage Production
    assert registry.alias_holder(model).version == "1"
    assert registry.alias_holder(model, c.ALIAS_PREVIOUS).version == "2"
    assert stages(model) == {"1": registry.STAGE_PRODUCTION, "2": registry.STAGE_ARCHIVED}
    # the history names both moves, A's as decided again against B's version
    shown = json.loads(invoke(["history", "--model-name", model, "--json", "--tracking-uri", server]).output)
    assert [(x["from_version"], x["to_version"], x["run_id"], x["rechecks"]) for x in shown["changes"]] == [
        ("2", "1", a["run_id"], 1),
        (None, "2", b["run_id"], 0),
    ]
    assert shown["warnings"] == []  # each move replaced what the one before had put there


def test_b_better_after_recheck_a_keeps_production_on_b(server, tmp_path, monkeypatch):
    model = "cross-host-b-wins"
    got = race(tmp_path, monkeypatch, server, model, WEAK, STRONG)
    a, b = got["a"], got["b"]
    assert got["a_exit"] == 0, got["output"][-3000:]
    assert got["a_first"].promoted and got["a_first"].champion is None
    assert (b["decision"], b["candidate"]["version"], b["production_moved"]) == (
        c.DECISION_PROMOTED,
        "2",
        True,
    )
    # A, weaker than B's version on A's own data, keeps production where B put it
    assert (a["decision"], a["rechecks"], a["production_moved"]) == (c.DECISION_KEPT, 1, False)
    assert a["champion"]["version"] == "2" and a["champion"]["cached_scores"] is False
    assert a["message"].startswith("kept production version 2;"), a["message"]
    assert "primary_metric" in [x["name"] for x in a["checks"] if not x["passed"]]
    assert a["candidate"]["metrics"][c.INTENT_F1_WEIGHTED] < a["champion"]["metrics"][c.INTENT_F1_WEIGHTED]
    mlflow.set_tracking_uri(server)
    assert decision_json(a["run_id"])["champion"]["version"] == "2"
    assert decision_json(a["run_id"])["decision"] == c.DECISION_KEPT
    v1, v2 = registry.get_version(model, "1"), registry.get_version(model, "2")
    assert v1.tags[c.TAG_DECISION] == c.DECISION_KEPT and v1.tags[c.TAG_CHAMPION_VERSION] == "2"
    assert c.TAG_PROMOTED_AT not in v1.tags  # A's first decision (promote) was recorded, never carried out
    assert v2.tags[c.TAG_DECISION_RUN] == b["run_id"] and v2.tags[c.TAG_DECISION] == c.DECISION_PROMOTED
    assert v2.tags["nlu_mlflow.last_challenge"] == "kept against version 1"
    assert registry.alias_holder(model).version == "2"
    assert registry.alias_holder(model, c.ALIAS_PREVIOUS) is None
    assert stages(model) == {"1": "None", "2": registry.STAGE_PRODUCTION}
    run_a = mlflow.MlflowClient().get_run(a["run_id"])
    assert c.TAG_PRODUCTION_MOVED not in run_a.data.tags and run_a.data.tags[c.TAG_RECHECKS] == "1"
