"""The workflow against a shared tracking server (docs/shared-server.md).

- The server as the docs set it up (scripts/mlflow-server.sh: MLflow 3.18 from .server-venv, PostgreSQL,
  served artifacts, allowed hosts, basic-auth; users from scripts/server_access.py), the 3.5.1 client:
  a full workflow run in-process as the service user and `mlflow run . --env-manager local` with
  ``MLFLOW_TRACKING_URI`` pointing at it; runs, registry and model files all go through the server
  (``mlflow-artifacts:`` URIs), and production loads back through it as a read-only user.
- Who may move production: a read-only user's `promote`/`rollback` fail with one sentence naming the missing
  permission and change nothing; no credentials are refused; webhook registration needs an admin;
  no password reaches a log, param, tag, artifact or message.
- A server that dies mid-run: `nlu-mlflow run` fails within a bound (MLflow's HTTP retry settings),
  with one clear error line, and nothing is promoted.
- docs/ci-workflow.yml parses with the real CLI (the server commands of docs/shared-server.md:
  tests/test_server_environment.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
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
import requests
import typer.main
import yaml

from nlu_mlflow import constants as c
from nlu_mlflow.cli import app
from nlu_mlflow.cli.webhooks import SECRET_ENV
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings
from tests.helpers import CONFIGS, PIZZA, ROOT, servers
from tests.helpers import cli as cli_args
from tests.helpers.cli import invoke

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
    for name in servers.User("", "").env():  # a subprocess logs in only as the test says
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
    admin: servers.User
    nightly: (
        servers.User
    )  # the service user of the nightly workflow: EDIT on the experiment, MANAGE on the model
    reader: servers.User  # may read but not promote: READ on both
    outputs: list[str]  # what the commands printed, for the leak check

    def passwords(self) -> dict[str, str]:
        return {user.name: user.password for user in (self.admin, self.nightly, self.reader)}


def access(nightly: servers.User, reader: servers.User) -> dict:
    """The access file of docs/shared-server.md (deploy/mlflow-server/access.json) for this server."""
    users = [
        {"name": nightly.name, "password_env": "NIGHTLY_PASSWORD", "experiment": "EDIT", "model": "MANAGE"},
        {"name": reader.name, "password_env": "READER_PASSWORD", "experiment": "READ", "model": "READ"},
    ]
    return {"experiment": c.DEFAULT_EXPERIMENT, "model": SHARED_MODEL, "users": users}


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """The shared server of docs/shared-server.md with its users (one per module); the tests' own reads
    go in as the admin."""
    home = tmp_path_factory.mktemp("shared_server")
    previous = mlflow.get_tracking_uri()
    auth, nightly, reader = servers.BasicAuth(), servers.User.new("nlu-nightly"), servers.User.new("reader")
    started = time.perf_counter()
    with (
        postgres_store() as store,
        servers.mlflow_server(store, home / "artifacts", home / "server.log", workers=1, auth=auth) as url,
    ):
        TIMINGS["postgres + mlflow server (basic-auth) up"] = time.perf_counter() - started
        passwords = {"NIGHTLY_PASSWORD": nightly.password, "READER_PASSWORD": reader.password}
        applied = servers.apply_access(url, auth.admin, access(nightly, reader), passwords, home)
        TIMINGS["... and its users (server_access.py)"] = time.perf_counter() - started
        with servers.logged_in(auth.admin):
            yield SharedServer(url, home / "artifacts", home, auth.admin, nightly, reader, [applied])
    mlflow.set_tracking_uri(previous)
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))


@pytest.fixture(scope="module")
def shared_run(shared_server):
    """One full workflow run (the light pipeline, 1 epoch) with the server as tracking URI."""
    configs = shared_server.home / "configs"
    configs.mkdir()
    shutil.copy(CONFIGS / "logreg_crf.yml", configs / "logreg_crf.yml")
    started = time.perf_counter()
    with servers.logged_in(shared_server.nightly):
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
    assert parent.info.user_id == shared_server.nightly.name  # the server records who logged in
    [child] = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{shared_run.run_id}'"
    )
    assert (child.info.run_name, child.info.status) == ("logreg_crf", "FINISHED")
    assert child.info.artifact_uri.startswith("mlflow-artifacts:")
    # the files landed in the server's --artifacts-destination, not on the client's disk: the run's reports
    # under the run, the model under its MLflow 3 logged model
    [model_output] = child.outputs.model_outputs
    stored = {p.name for p in shared_server.artifacts.rglob("*") if child.info.run_id in p.parts}
    model_files = {p.name for p in shared_server.artifacts.rglob("*") if model_output.model_id in p.parts}
    assert "intent_report.json" in stored
    assert {"MLmodel", "logreg_crf.tar.gz"} <= model_files
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
    with servers.logged_in(shared_server.reader):  # reading production needs no more than READ
        model = mlflow.pyfunc.load_model(f"models:/{SHARED_MODEL}@{c.ALIAS_PRODUCTION}")
    predictions = model.predict(pd.DataFrame({"text": ["hello there", "i want a large pepperoni pizza"]}))
    assert len(predictions) == 2
    assert list(predictions["intent"]) == ["greet", "purchase"]


@pytest.mark.slow
@pytest.mark.postgres
def test_mlflow_run_against_the_shared_server(shared_server):
    """`mlflow run . --env-manager local -e train` with MLFLOW_TRACKING_URI set, as a CI job would."""
    client = mlflow.MlflowClient(shared_server.url)
    with servers.logged_in(shared_server.nightly):  # its creator may log to it (MANAGE)
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
        env=run_env(MLFLOW_TRACKING_URI=shared_server.url, **shared_server.nightly.env()),
        cwd=ROOT,
        timeout=600,
    )
    TIMINGS["mlflow run -e train through the server"] = time.perf_counter() - started
    shared_server.outputs.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(client, "shared-mlproject")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags.get("mlflow.project.entryPoint") == "train"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    assert [(r.info.run_name, r.info.status) for r in runs if r is not parent] == [("logreg_crf", "FINISHED")]


# --- who may move production (basic-auth) ---


def cli(server: SharedServer, args: list[str], user: servers.User | None, **env: str | None):
    """`nlu-mlflow ARGS` against the shared server as ``user`` (None: no credentials at all)."""
    login = user.env() if user else dict.fromkeys(servers.User("", "").env())
    where = [] if "--tracking-uri" in args else ["--tracking-uri", server.url]
    result = invoke([*args, *where], env={**login, **env})
    server.outputs.append(result.output)
    return result


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def registry_state(model: str) -> tuple:
    """Everything a move could change: aliases, each version's stage and tags, and the runs logged."""
    client = mlflow.MlflowClient()
    [registered] = client.search_registered_models(f"name='{model}'")
    versions = sorted(
        (v.version, v.current_stage, tuple(sorted(v.tags.items())))
        for v in client.search_model_versions(f"name='{model}'")
    )
    return dict(registered.aliases), versions, len(runs_of(client, c.DEFAULT_EXPERIMENT))


@pytest.fixture(scope="module")
def two_productions(shared_server, shared_run):  # noqa: ARG001 (shared_run: version 1 must exist)
    """A second version put into production by the service user with `nlu-mlflow promote --force`, so that
    there is a `previous-production` to roll back to."""
    # a runs:/ URI: a 3.18 server refuses a bare artifact location as source unless its run is named
    first = registry.get_version(SHARED_MODEL, "1")
    with servers.logged_in(shared_server.nightly):
        second = registry.register(f"runs:/{first.run_id}/model", SHARED_MODEL, {})
    promoted = cli(
        shared_server,
        ["promote", second.version, "--force", "--model-name", SHARED_MODEL],
        shared_server.nightly,
    )
    assert promoted.exit_code == 0, promoted.output
    return second.version


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("move", [["promote", "1", "--force"], ["rollback"]], ids=["promote", "rollback"])
def test_a_read_only_user_cannot_move_production(shared_server, two_productions, move):
    before = registry_state(SHARED_MODEL)
    assert before[0] == {c.ALIAS_PRODUCTION: two_productions, c.ALIAS_PREVIOUS: "1"}

    result = cli(shared_server, [*move, "--model-name", SHARED_MODEL], shared_server.reader)

    assert result.exit_code == 77, result.output  # EX_NOPERM
    [error] = error_lines(result.output)
    # the decision is recorded before production moves: the first write refused is the record's version tag
    assert f"MLflow user '{shared_server.reader.name}' may not tag version" in error, error
    assert f"that needs EDIT permission on registered model '{SHARED_MODEL}'" in error, error
    assert "Traceback" not in result.output
    assert registry_state(SHARED_MODEL) == before  # no alias, stage, tag or decision run changed


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("two_productions")
def test_a_read_only_users_workflow_is_refused_before_training(shared_server, tmp_path):
    before = registry_state(SHARED_MODEL)
    args = [*cli_args.run_args(tmp_path, shared_server.url), "--model-name", SHARED_MODEL]
    result = cli(shared_server, args, shared_server.reader)
    assert result.exit_code == 77, result.output
    [error] = error_lines(result.output)
    assert f"MLflow user '{shared_server.reader.name}' may not write runs" in error, error
    assert "that needs EDIT permission on the experiment" in error, error
    assert "trained in" not in result.output
    assert registry_state(SHARED_MODEL) == before


@pytest.mark.slow
@pytest.mark.postgres
def test_a_read_only_user_reads_status(shared_server, two_productions):
    result = cli(shared_server, ["status", "--model-name", SHARED_MODEL], shared_server.reader)
    assert result.exit_code == 0, result.output
    assert f"{SHARED_MODEL} version {two_productions} is in production" in result.output
    assert "previous-production: version 1" in result.output


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("shared_run")
def test_requests_without_valid_credentials_are_refused(shared_server):
    anonymous = requests.get(f"{shared_server.url}/api/2.0/mlflow/registered-models/get?name={SHARED_MODEL}")
    assert anonymous.status_code == 401

    nobody = cli(shared_server, ["status", "--model-name", SHARED_MODEL], None)
    assert nobody.exit_code == 77, nobody.output
    assert error_lines(nobody.output) == [
        f"error: MLflow tracking server {shared_server.url} requires a login: set "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
    ]
    wrong = servers.User(shared_server.reader.name, "not-the-password-1")
    refused = cli(shared_server, ["status", "--model-name", SHARED_MODEL], wrong)
    assert refused.exit_code == 77, refused.output
    [error] = error_lines(refused.output)
    assert f"did not accept user '{wrong.name}' with the password in MLFLOW_TRACKING_PASSWORD" in error
    assert wrong.password not in refused.output


@pytest.mark.slow
@pytest.mark.postgres
def test_a_password_in_the_tracking_uri_is_refused(shared_server):
    reader = shared_server.reader
    with_password = shared_server.url.replace("http://", f"http://{reader.name}:{reader.password}@")
    result = invoke(["status", "--tracking-uri", with_password], env=dict.fromkeys(reader.env()))
    shared_server.outputs.append(result.output)
    assert result.exit_code == 2, result.output
    [error] = error_lines(result.output)
    assert "put no password in the URL" in error and "MLFLOW_TRACKING_PASSWORD" in error, error
    assert reader.password not in result.output


@pytest.mark.slow
@pytest.mark.postgres
def test_webhook_registration_needs_an_admin(shared_server):
    with servers.slack_sink("/webhook") as receiver:  # stands in for `nlu-mlflow webhooks serve`
        args = ["webhooks", "register", "--url", receiver.url]
        secret = {SECRET_ENV: "whsec-" + secrets.token_hex(16)}
        refused = cli(shared_server, args, shared_server.nightly, **secret)
        registered = cli(shared_server, args, shared_server.admin, **secret)
        delivered = len(receiver.messages)
    assert refused.exit_code == 77, refused.output
    assert error_lines(refused.output) == [
        f"error: MLflow user '{shared_server.nightly.name}' may not register webhooks on {shared_server.url}: "
        "that needs an MLflow admin account; run it with an admin's MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD."
    ]
    # a loopback receiver is reached because the server runs with MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true
    assert registered.exit_code == 0, registered.output
    assert "test delivery answered 200" in registered.output and delivered == 1
    client = mlflow.MlflowClient()
    for hook in client.list_webhooks():
        client.delete_webhook(hook.webhook_id)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("two_productions")
def test_no_password_reaches_a_log_param_tag_artifact_or_message(shared_server):
    """After everything above: search every run's params and tags, every version's tags, every file the
    server stored, the server's log and what the commands printed for the three passwords."""
    client = mlflow.MlflowClient()
    texts = {"command output": "\n".join(shared_server.outputs)}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            texts[f"run {run.info.run_id}"] = json.dumps([run.data.params, run.data.tags])
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        texts[f"model {model.name}"] = json.dumps(
            [model.description, [(v.tags, v.description) for v in versions]]
        )
    files = [p for p in shared_server.home.rglob("*") if p.is_file() and "pgdata" not in p.parts]
    texts.update({str(p): p.read_bytes().decode("utf-8", "replace") for p in files})
    assert any("MLmodel" in name for name in texts) and len(texts) > 20  # the search saw the artifacts
    leaks = [
        (user, where)
        for user, password in shared_server.passwords().items()
        for where, text in texts.items()
        if password in text
    ]
    assert leaks == []


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


# --- the documented CI job parses with the real command-line interface ---


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
