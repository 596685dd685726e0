"""Candidates on MLflow Projects backends: the same workflow inline and with `--backend local --parallel 2`
gives the same candidates, metrics and decision; a candidate that fails or runs past its timeout is a
FAILED child run, not a failed workflow. Kubernetes cannot run here (no cluster, no docker engine): its
submission is checked with MLflow's `projects.run` replaced by a recorder, which is said where it happens."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import projects
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings as workflow_settings
from tests.helpers import CONFIGS, PIZZA, ROOT
from tests.helpers.cli import invoke, run_args

FIXTURES = ROOT / "tests" / "data" / "configs"
VARYING = (c.TRAIN_SECONDS, c.EVAL_SECONDS, c.MODEL_SIZE_MB)  # wall time and archive bytes, not scores


def configs_folder(tmp_path, *files):
    folder = tmp_path / "configs"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    return folder


def run_workflow(home, configs, **extra):
    values = {
        "data": PIZZA / "train.yml",
        "test_data": PIZZA / "test.yml",
        "critical": PIZZA / "critical.yml",
        "configs": configs,
        "epochs": 2,
        "tracking_uri": f"sqlite:///{home / 'mlruns.db'}",
        "project_dir": home,
        **extra,
    }
    return workflow.run(workflow_settings.build(values))


def scores(result) -> dict:
    return {x.name: {k: v for k, v in x.metrics.items() if k not in VARYING} for x in result.candidates}


@pytest.mark.slow
def test_local_backend_in_parallel_gives_the_inline_results(tmp_path):
    configs = configs_folder(
        tmp_path, CONFIGS / "logreg_crf.yml", CONFIGS / "diet.yml", FIXTURES / "weak_crf.yml"
    )
    (tmp_path / "inline").mkdir()
    (tmp_path / "local").mkdir()
    inline = run_workflow(tmp_path / "inline", configs)
    local = run_workflow(tmp_path / "local", configs, backend="local", parallel=2)
    assert (
        [x.name for x in local.candidates]
        == [x.name for x in inline.candidates]
        == ["diet", "logreg_crf", "weak_crf"]
    )
    expected, found = scores(inline), scores(local)
    for name in expected:
        assert found[name] == pytest.approx(expected[name], abs=1e-6), name
    for name in expected:  # per example too: the paired test compares these
        assert [x.correct for x in local.candidates if x.name == name] == [
            x.correct for x in inline.candidates if x.name == name
        ]
    assert local.selection.best == inline.selection.best
    assert local.outcome.decision.promote == inline.outcome.decision.promote
    assert local.outcome.message.replace("version 1", "") == inline.outcome.message.replace("version 1", "")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'local' / 'mlruns.db'}")
    children = client.search_runs(
        [client.get_run(local.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{local.run_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["diet", "logreg_crf", "weak_crf"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.project.backend"] == "local"
        assert child.data.params["train_digest"] == client.get_run(local.run_id).data.params["train_digest"]


@pytest.mark.slow
def test_a_failing_and_a_timed_out_candidate_are_failed_children(tmp_path):
    configs = configs_folder(tmp_path, FIXTURES / "broken_logreg.yml", FIXTURES / "weak_crf.yml")
    result = run_workflow(tmp_path, configs, backend="local", parallel=2)
    assert [x.name for x in result.candidates] == ["weak_crf"]
    [failed] = result.failed
    assert failed.name == "broken_logreg" and "max_iter" in failed.reason
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}").get_run(failed.run_id)
    assert run.info.status == "FAILED" and "max_iter" in run.data.tags[c.TAG_ERROR]
    assert result.outcome.decision is not None  # the workflow went on and decided on weak_crf

    (tmp_path / "t").mkdir()
    slow = run_workflow(
        tmp_path,
        configs_folder(tmp_path / "t", FIXTURES / "weak_crf.yml"),
        backend="local",
        candidate_timeout=3,
    )
    [timed_out] = slow.failed
    assert "timed out after 3 s" in timed_out.reason
    assert slow.outcome.message.startswith("nothing registered")


@pytest.mark.slow
def test_inline_failing_config_exits_4_and_the_others_decide(tmp_path, tracking_uri):
    configs = configs_folder(tmp_path, FIXTURES / "broken_logreg.yml", CONFIGS / "logreg_crf.yml")
    summary = tmp_path / "summary.json"
    result = invoke(run_args(tmp_path, tracking_uri, configs=configs) + ["--summary-json", str(summary)])
    assert result.exit_code == 4, result.output
    assert "1 config(s) failed: broken_logreg FAILED (" in result.output
    assert "caused by ValueError: Maximum number of iteration must be positive" in result.output
    data = json.loads(summary.read_text())
    assert data["decision"] == c.DECISION_PROMOTED
    assert data["failed_candidates"][0]["config"] == "broken_logreg"
    assert "broken_logreg" in data["selection"] and data["selection"]["broken_logreg"].startswith("failed: ")


def test_kubernetes_backend_submits_the_candidate_entry_point_per_config(tmp_path, monkeypatch):
    """No cluster here: ``mlflow.projects.run`` is replaced by a recorder that answers like a finished job."""
    submitted = []

    class Finished:
        def __init__(self, run_id):
            self.run_id = run_id

        def get_status(self):
            return "FAILED"  # nothing ran: the candidates are collected as failed, the workflow still ends

        def cancel(self):
            pass

    def record(**kwargs):
        submitted.append(kwargs)
        return Finished(kwargs["run_id"])

    monkeypatch.setattr(projects.mlflow.projects, "run", record)
    monkeypatch.setattr("nlu_mlflow.workflow.backends.POLL_S", 0.01)
    configs = configs_folder(tmp_path, CONFIGS / "logreg_crf.yml", FIXTURES / "weak_crf.yml")
    monkeypatch.chdir(ROOT)  # the default --kubernetes-config is relative to the repository
    result = run_workflow(tmp_path, configs, backend="kubernetes", parallel=2)
    assert [s["parameters"]["config"] for s in submitted] == ["logreg_crf", "weak_crf"]
    for spec in submitted:
        assert spec["entry_point"] == "candidate" and spec["backend"] == "kubernetes"
        assert spec["uri"] == str(ROOT / "deploy" / "kubernetes")
        assert spec["backend_config"].endswith("deploy/kubernetes/kubernetes_config.json")
        assert spec["parameters"]["parent_run_id"] == result.run_id and spec["synchronous"] is False
    assert {x.name for x in result.failed} == {"logreg_crf", "weak_crf"}
    assert all("kubernetes job ended FAILED" in x.reason for x in result.failed)


def test_unknown_backend_is_an_input_error(tmp_path):
    from nlu_mlflow.errors import InputError

    with pytest.raises(
        InputError,
        match=r"backend 'kubernets' must be one of inline, local, kubernetes \(did you mean 'kubernetes'\?\)",
    ):
        workflow_settings.build({"data": PIZZA / "train.yml", "backend": "kubernets"})
