"""The workflow against a shared tracking server (docs/shared-server.md).

- `mlflow server` on PostgreSQL with served artifacts: a full workflow run in-process and
  `mlflow run . --env-manager local` with ``MLFLOW_TRACKING_URI`` pointing at it; runs, registry and
  model files all go through the server (``mlflow-artifacts:`` URIs), and production loads back through it.
- A server that dies mid-run: `nlu-mlflow run` fails within a bound (MLflow's HTTP retry settings),
  with one clear error line, and nothing is promoted.
- The commands in docs/shared-server.md and docs/ci-workflow.yml parse with the real CLIs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import typer.main
import yaml
from mlflow.cli import cli as mlflow_cli

from nlu_mlflow import constants as c
from nlu_mlflow.cli import app
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings
from tests.helpers import CONFIGS, PIZZA, ROOT, servers

DOCS = ROOT / "docs"
SHARED_MODEL = "shared-nlu"
DEAD_MODEL = "dead-nlu"
# small retry settings so the dead-server test is quick (docs/shared-server.md recommends 3 and 60 for jobs)
BOUNDED_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
FAILURE_BOUND_S = 180
UNREACHABLE_BOUND_S = 90
TIMINGS: dict[str, float] = {}


def run_env(**extra: str) -> dict[str, str]:
    """The environment of a workflow subprocess: the venv's bin first, no tracking settings inherited."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        env.pop(name, None)
    for name in BOUNDED_RETRIES:
        env.pop(name, None)
    return {**env, **extra}


def runs_of(client: mlflow.MlflowClient, experiment_name: str) -> list:
    experiment = client.get_experiment_by_name(experiment_name)
    return client.search_runs([experiment.experiment_id]) if experiment else []


def production_versions(client: mlflow.MlflowClient, model: str) -> list[str]:
    """The version holding alias `production`, if any (search_model_versions leaves aliases out)."""
    models = client.search_registered_models(f"name='{model}'")
    return [str(m.aliases[c.ALIAS_PRODUCTION]) for m in models if c.ALIAS_PRODUCTION in m.aliases]


@contextlib.contextmanager
def postgres_store():
    """A PostgreSQL cluster for the backend store, in a folder the `postgres` user can reach.

    pytest's tmp folders live under a 0700 directory of the test user, which the cluster's own user
    (servers.postgres runs it as `postgres` when the tests run as root) cannot enter.
    """
    if servers.postgres_bin() is None:
        pytest.fail(
            "PostgreSQL is not installed: run `bash scripts/install-postgres.sh` (Debian's packages)."
        )
    with servers.postgres() as uri:
        yield uri


@dataclass(frozen=True)
class SharedServer:
    url: str
    artifacts: Path
    home: Path


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """`mlflow server` with a PostgreSQL backend store and `--serve-artifacts` (one per module)."""
    home = tmp_path_factory.mktemp("shared_server")
    previous = mlflow.get_tracking_uri()
    started = time.perf_counter()
    with (
        postgres_store() as store,
        servers.mlflow_server(store, home / "artifacts", home / "server.log", workers=1) as url,
    ):
        TIMINGS["postgres + mlflow server up"] = time.perf_counter() - started
        yield SharedServer(url, home / "artifacts", home)
    mlflow.set_tracking_uri(previous)
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))


@pytest.fixture(scope="module")
def shared_run(shared_server):
    """One full workflow run (the light pipeline, 1 epoch) with the server as tracking URI."""
    configs = shared_server.home / "configs"
    configs.mkdir()
    shutil.copy(CONFIGS / "logreg_crf.yml", configs / "logreg_crf.yml")
    started = time.perf_counter()
    result = workflow.run(
        settings.build(
            {
                "data": PIZZA / "train.yml",
                "test_data": PIZZA / "test.yml",
                "critical": PIZZA / "critical.yml",
                "configs": configs,
                "epochs": 1,
                "tracking_uri": shared_server.url,
                "model_name": SHARED_MODEL,
                "project_dir": shared_server.home,
            }
        )
    )
    TIMINGS["workflow run through the server"] = time.perf_counter() - started
    return result


@pytest.mark.slow
@pytest.mark.postgres
def test_workflow_logs_and_stores_artifacts_through_the_server(shared_server, shared_run):
    client = mlflow.MlflowClient(shared_server.url)
    parent = client.get_run(shared_run.run_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    assert parent.info.status == "FINISHED"
    [child] = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{shared_run.run_id}'"
    )
    assert (child.info.run_name, child.info.status) == ("logreg_crf", "FINISHED")
    assert child.info.artifact_uri.startswith("mlflow-artifacts:")
    # the files landed in the server's --artifacts-destination, not on the client's disk
    stored = {p.name for p in shared_server.artifacts.rglob("*") if child.info.run_id in p.parts}
    assert {"MLmodel", "intent_report.json", "logreg_crf.tar.gz"} <= stored
    assert not (shared_server.home / c.DEFAULT_ARTIFACT_DIR).exists()
    assert not (shared_server.home / "mlruns.db").exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_version_is_promoted_and_production_loads_through_the_server(shared_server, shared_run):
    client = mlflow.MlflowClient(shared_server.url)
    assert shared_run.outcome.promoted, shared_run.outcome.message
    version = client.get_model_version_by_alias(SHARED_MODEL, c.ALIAS_PRODUCTION)
    assert version.version == "1"
    assert version.run_id == shared_run.best.run_id
    mlflow.set_tracking_uri(shared_server.url)
    model = mlflow.pyfunc.load_model(f"models:/{SHARED_MODEL}@{c.ALIAS_PRODUCTION}")
    predictions = model.predict(pd.DataFrame({"text": ["hello there", "i want a large pepperoni pizza"]}))
    assert len(predictions) == 2
    assert list(predictions["intent"]) == ["greet", "purchase"]


@pytest.mark.slow
@pytest.mark.postgres
def test_mlflow_run_against_the_shared_server(shared_server):
    """`mlflow run . --env-manager local -e train` with MLFLOW_TRACKING_URI set, as a CI job would."""
    client = mlflow.MlflowClient(shared_server.url)
    client.create_experiment("shared-mlproject")  # the server picks the artifact location
    cmd = [
        "mlflow", "run", ".", "-e", "train", "--env-manager", "local",
        "--experiment-name", "shared-mlproject", "-P", "epochs=1",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=run_env(MLFLOW_TRACKING_URI=shared_server.url),
        cwd=ROOT,
        timeout=600,
    )
    TIMINGS["mlflow run -e train through the server"] = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(client, "shared-mlproject")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags.get("mlflow.project.entryPoint") == "train"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    assert [(r.info.run_name, r.info.status) for r in runs if r is not parent] == [("logreg_crf", "FINISHED")]


# --- a tracking server that dies mid-run ---


@dataclass(frozen=True)
class DeadServerRun:
    url: str
    returncode: int | None  # None: still running at the bound, then killed
    seconds_after_kill: float
    stderr: str
    production: list[str]
    run_statuses: list[str]


def start_workflow(url: str, home: Path, env: dict[str, str]) -> subprocess.Popen:
    configs = home / "configs"
    configs.mkdir()
    for config in (CONFIGS / "logreg_crf.yml", ROOT / "tests" / "data" / "configs" / "weak_crf.yml"):
        shutil.copy(config, configs / config.name)
    cmd = [
        str(Path(sys.executable).parent / "nlu-mlflow"), "run",
        "--data", str(PIZZA / "train.yml"), "--test-data", str(PIZZA / "test.yml"),
        "--configs", str(configs), "--epochs", "1",
        "--tracking-uri", url, "--model-name", DEAD_MODEL,
    ]  # fmt: skip
    with open(home / "stderr.txt", "w") as stderr:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=home)


def first_child_run(client: mlflow.MlflowClient, proc: subprocess.Popen, home: Path):
    def found():
        if proc.poll() is not None:
            raise AssertionError(f"the workflow exited early: {(home / 'stderr.txt').read_text()[-3000:]}")
        runs = runs_of(client, c.DEFAULT_EXPERIMENT)
        return [r for r in runs if r.data.tags.get(c.TAG_ROLE) == c.ROLE_CANDIDATE]

    return servers.wait_until(found, 300, "first candidate run")


def wait_bounded(proc: subprocess.Popen, bound: float) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        returncode = proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        returncode = None
    return returncode, time.monotonic() - started


@pytest.fixture(scope="module")
def dead_server_run(tmp_path_factory) -> DeadServerRun:
    """`nlu-mlflow run` against a server that is stopped as soon as the first candidate run exists;
    then a server on the same store shows what was left behind."""
    home = tmp_path_factory.mktemp("dead_server")
    backend, artifacts, log = f"sqlite:///{home / 'mlflow.db'}", home / "artifacts", home / "server.log"
    with contextlib.ExitStack() as server:
        url = server.enter_context(servers.mlflow_server(backend, artifacts, log, workers=1))
        proc = start_workflow(url, home, run_env(**BOUNDED_RETRIES))
        try:
            first_child_run(mlflow.MlflowClient(url), proc, home)
            server.close()  # servers.stop: SIGTERM to the server's process group, workers included
            returncode, seconds = wait_bounded(proc, FAILURE_BOUND_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    TIMINGS["dead server: failure after the kill"] = seconds
    with servers.mlflow_server(backend, artifacts, log, workers=1) as again:
        client = mlflow.MlflowClient(again)
        statuses = sorted(r.info.status for r in runs_of(client, c.DEFAULT_EXPERIMENT))
        production = production_versions(client, DEAD_MODEL)
    stderr = (home / "stderr.txt").read_text(errors="replace")
    return DeadServerRun(url, returncode, seconds, stderr, production, statuses)


@pytest.mark.slow
def test_dead_server_fails_the_run_within_a_bound(dead_server_run, record_property):
    record_property("dead_server_failure_seconds", f"{dead_server_run.seconds_after_kill:.1f}")
    print(f"\ndead server: the workflow exited {dead_server_run.seconds_after_kill:.1f} s after the kill")
    assert dead_server_run.returncode is not None, f"still running {FAILURE_BOUND_S} s after the server died"
    assert dead_server_run.returncode == 1, dead_server_run.stderr[-3000:]


@pytest.mark.slow
def test_dead_server_promotes_nothing(dead_server_run):
    assert dead_server_run.production == []
    # the runs could not be closed while the server was down: none claims to have finished
    assert dead_server_run.run_statuses and "FINISHED" not in dead_server_run.run_statuses


@pytest.mark.slow
def test_dead_server_error_is_one_clear_line(dead_server_run):
    """The user sees one `error:` line naming the tracking server, not a traceback.

    Needs the CLI to turn MLflow's errors into a sentence (see the report that came with this test).
    """
    stderr = dead_server_run.stderr
    assert "Traceback (most recent call last)" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-3000:]
    assert dead_server_run.url in errors[0] and "tracking server" in errors[0], errors[0]


@pytest.mark.slow
def test_unreachable_server_fails_fast_without_retry_settings(tmp_path):
    """Nobody set MLFLOW_HTTP_REQUEST_*: the workflow still gives up in well under MLflow's default
    (7 retries with exponential back-off: about 4 minutes per request), before anything is trained."""
    url = f"http://127.0.0.1:{servers.free_port()}"  # nothing listens there
    proc = start_workflow(url, tmp_path, run_env())
    returncode, seconds = wait_bounded(proc, UNREACHABLE_BOUND_S)
    TIMINGS["unreachable server, MLflow's retry defaults"] = seconds
    stderr = (tmp_path / "stderr.txt").read_text(errors="replace")
    assert returncode == 1, f"exit {returncode} after {seconds:.0f} s: {stderr[-2000:]}"
    assert "trained in" not in stderr


# --- the documented commands parse with the real command-line interfaces ---


def shell_commands(text: str, program: str) -> list[list[str]]:
    """Commands starting with ``program`` in the ```bash blocks of a markdown text (continuations joined)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    joined = "\n".join(block.replace("\\\n", " ") for block in blocks)
    return [
        shlex.split(line, comments=True) for line in joined.splitlines() if line.strip().startswith(program)
    ]


def test_documented_mlflow_server_commands_parse():
    commands = shell_commands((DOCS / "shared-server.md").read_text(), "mlflow server")
    assert commands, "docs/shared-server.md shows no `mlflow server` command"
    for argv in commands:
        context = mlflow_cli.commands["server"].make_context("server", argv[2:])
        assert context.params["serve_artifacts"], argv
        assert context.params["backend_store_uri"].startswith("postgresql"), argv
        assert context.params["artifacts_destination"], argv


def test_ci_workflow_example_runs_the_workflow_against_a_server_from_secrets():
    document = yaml.safe_load((DOCS / "ci-workflow.yml").read_text())
    triggers = document[True]  # YAML 1.1 reads the key `on` as true
    assert "data/**" in triggers["push"]["paths"]
    steps = [step for job in document["jobs"].values() for step in job["steps"]]
    [train] = [step for step in steps if "nlu-mlflow run" in step.get("run", "")]
    assert train["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert {"MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"} <= set(train["env"])
    argv = shlex.split(train["run"].replace("\\\n", " "))
    argv = argv[argv.index("run") :]
    context = typer.main.get_command(app).commands["run"].make_context("run", argv[1:])
    assert str(context.params["workflow_file"]) == "nlu-mlflow.yml"
    assert (str(context.params["report_md"]), str(context.params["summary_json"])) == (
        "report.md",
        "summary.json",
    )
    summary = [step["run"] for step in steps if "GITHUB_STEP_SUMMARY" in step.get("run", "")]
    assert summary and "report.md" in summary[0] and '>> "$GITHUB_STEP_SUMMARY"' in summary[0]
