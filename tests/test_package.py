"""nlu-mlflow installed as a package, used from a folder that is not the repository (issue 25).

A fresh environment is built the way scripts/bootstrap.sh builds .venv (``pip install --no-deps
--ignore-requires-python -r requirements/lock.txt``; pip's cache makes the second time fast), then the wheel
``pip wheel --no-deps`` builds from a copy of the working tree is installed with ``pip install --no-deps``.
From another folder: every command's ``--help``, and a real ``nlu-mlflow run`` (one epoch, the pizza data) on
the inline and on the local backend. The Kubernetes backend goes as far as it can without a cluster: as in
tests/workflow/test_backends.py, ``mlflow.projects.run`` is replaced by a recorder (mocked: no cluster, no
docker engine here), which also checks that the MLproject it is handed parses with MLflow's loader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CONFIGS, PIZZA, ROOT

NOT_SHIPPED = (".git", ".venv", ".server-venv", "build", "*.egg-info", "__pycache__", ".pytest_cache")
NOT_SHIPPED += (".ruff_cache", "mlruns*", "mlartifacts", "bench-results", "notebooks", ".rasa", "optuna.db")

HELPS = """
import json
from typer.main import get_command
from click.testing import CliRunner
import nlu_mlflow
from nlu_mlflow.cli import app

root = get_command(app)

def walk(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])

answers = {" ".join(p): CliRunner().invoke(root, [*p, "--help"]) for p in walk(root, [])}
print(json.dumps({
    "package": nlu_mlflow.__file__,
    "helps": {name: [r.exit_code, r.output[:400]] for name, r in answers.items()},
}))
"""

KUBERNETES = """
import json, sys
import mlflow.projects
from mlflow.projects import _project_spec

submitted = []

class Finished:  # what a job that ran nothing answers: the candidates are collected as failed
    def __init__(self, run_id):
        self.run_id = run_id
    def get_status(self):
        return "FAILED"
    def cancel(self):
        pass

def record(**kwargs):
    project = _project_spec.load_project(kwargs["uri"])  # MLflow's own reading of the MLproject
    entry = project.get_entry_point(kwargs["entry_point"])
    submitted.append({**{k: str(v) for k, v in kwargs.items()}, "command": entry.command,
                      "docker_image": (project.docker_env or {}).get("image")})
    return Finished(kwargs["run_id"])

mlflow.projects.run = record
import nlu_mlflow.workflow.backends as backends
backends.POLL_S = 0.05
from nlu_mlflow.cli import app
try:
    app(sys.argv[1:])
finally:
    print("SUBMITTED " + json.dumps(submitted))
"""


def _run(command: list, cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The fresh environment with the wheel installed, and a folder elsewhere with a tiny copy of the data."""
    home = tmp_path_factory.mktemp("installed")
    venv = home / "venv"
    python = str(venv / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-requires-python"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements" / "lock.txt")], check=True, timeout=1800)
    source = (
        home / "source"
    )  # a copy: an in-tree build could pick up stale files from the repository's build/
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED), symlinks=True)
    dist = home / "dist"
    subprocess.run(
        [python, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(dist)], check=True
    )
    [wheel] = dist.glob("nlu_mlflow-*.whl")
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)
    elsewhere = home / "elsewhere"
    (elsewhere / "configs").mkdir(parents=True)
    shutil.copy(CONFIGS / "logreg_crf.yml", elsewhere / "configs")
    for name in ("train.yml", "test.yml"):
        shutil.copy(PIZZA / name, elsewhere / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"
    return {"venv": venv, "python": python, "elsewhere": elsewhere, "env": env}


def _workflow(installed: dict, name: str, *extra: str) -> list[str]:
    store = installed["elsewhere"] / name
    store.mkdir()
    return [
        "run", "--data", "train.yml", "--test-data", "test.yml", "--configs", "configs", "--epochs", "1",
        "--tracking-uri", f"sqlite:///{store / 'mlruns.db'}", "--lock-file", str(store / "lock"),
        "--summary-json", str(store / "summary.json"), "--model-name", f"rasa-{name}", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_every_command_answers_help_from_the_installed_package(installed):
    done = _run([installed["python"], "-c", HELPS], installed["elsewhere"], installed["env"])
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(answer["package"]).is_relative_to(installed["venv"])  # not the repository's checkout
    assert {"run", "status", "promote", "rollback", "history", "webhooks", "sync-rasa"} <= set(
        answer["helps"]
    )
    failed = {name: out for name, (code, out) in answer["helps"].items() if code != 0 or "Usage:" not in out}
    assert failed == {}
    script = _run(["nlu-mlflow", "--help"], installed["elsewhere"], installed["env"])  # the console script
    assert script.returncode == 0 and "Usage:" in script.stdout, script.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["inline", "local"])
def test_a_real_run_works_from_another_folder(installed, backend):
    args = _workflow(installed, backend, "--backend", backend)
    done = _run(["nlu-mlflow", *args], installed["elsewhere"], installed["env"])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    summary = json.loads((installed["elsewhere"] / backend / "summary.json").read_text())
    assert summary["candidate"]["config"] == "logreg_crf", summary
    assert summary["failed_candidates"] == [], summary


@pytest.mark.slow
def test_the_kubernetes_backend_submits_the_packaged_mlproject(installed):
    deploy = installed["elsewhere"] / "deploy" / "kubernetes"  # a user's copy of deploy/kubernetes/
    deploy.mkdir(parents=True)
    for name in ("kubernetes_config.json", "kubernetes_job_template.yaml"):
        shutil.copy(ROOT / "deploy" / "kubernetes" / name, deploy)
    args = _workflow(installed, "kubernetes", "--backend", "kubernetes")
    done = _run([installed["python"], "-c", KUBERNETES, *args], installed["elsewhere"], installed["env"])
    output = done.stdout + done.stderr
    [line] = [x for x in done.stdout.splitlines() if x.startswith("SUBMITTED ")]
    [job] = json.loads(line.removeprefix("SUBMITTED "))
    packaged = installed["venv"].glob("lib/python*/site-packages/nlu_mlflow/workflow/mlprojects/kubernetes")
    assert Path(job["uri"]) == next(packaged), output[-3000:]
    assert (job["entry_point"], job["backend"], job["docker_image"]) == (
        "candidate",
        "kubernetes",
        "nlu-mlflow:latest",
    )
    assert job["command"].startswith("python -m nlu_mlflow.cli candidate --parent-run-id {parent_run_id}")
    assert job["backend_config"].endswith("deploy/kubernetes/kubernetes_config.json")
    assert "kubernetes job ended FAILED" in output


@pytest.mark.parametrize(
    ("packaged", "checkout"),
    [("local", ROOT / "MLproject"), ("kubernetes", ROOT / "deploy" / "kubernetes" / "MLproject")],
)
def test_the_packaged_mlprojects_run_the_checkouts_candidate_entry_point(packaged, checkout):
    import yaml

    from nlu_mlflow.workflow import backends

    mine = yaml.safe_load((backends.PACKAGED_MLPROJECTS / packaged / "MLproject").read_text())
    theirs = yaml.safe_load(checkout.read_text())
    assert mine["entry_points"] == {"candidate": theirs["entry_points"]["candidate"]}
    assert mine.get("docker_env", {}).get("image") == theirs.get("docker_env", {}).get("image")
    assert backends.mlproject_folder(ROOT, "local") == ROOT  # a checkout's own MLproject comes first
    assert backends.mlproject_folder(ROOT / "nlu_mlflow", "local") == backends.PACKAGED_MLPROJECTS / "local"
