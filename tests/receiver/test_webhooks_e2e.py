"""End to end on loopback, every part a real process: `mlflow server` (SQLite store) delivers signed
registry events to the receiver (`webhooks serve` in a subprocess), which loads production into
`rasa run --enable-api --auth-token` and posts to a local HTTP sink standing in for Slack.

The tests run in order on one stack; each reads what Rasa serves before it changes anything.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import requests
from typer.testing import CliRunner

from nlu_mlflow import constants as c
from nlu_mlflow.cli.webhooks import RASA_TOKEN_ENV, SECRET_ENV, SLACK_URL_ENV
from nlu_mlflow.receiver.deploy import deployed_file_name
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.tracking import registry
from tests.helpers import servers
from tests.receiver.test_app import VERSION_TAGS, log_bad_model, nlu_mlflow_app

pytestmark = pytest.mark.slow

MODEL = "rasa-nlu-e2e"
TIMINGS: dict[str, float] = {}


@dataclass
class Stack:
    home: Path
    mlflow_url: str
    mlflow_log: Path
    experiment_id: str
    model_uri: str
    rasa: servers.RasaApi
    sink: servers.Sink
    secret: str
    receiver_url: str = ""
    receiver: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)
    cli_output: list[str] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.home / "deploy"

    def serving(self) -> str:
        return self.rasa.status()["model_file"]

    def receiver_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs)

    def mlflow_log_text(self) -> str:
        return self.mlflow_log.read_text(errors="replace")


def serve_command() -> list[str]:
    from nlu_mlflow.cli import app

    if "webhooks" in {group.name for group in app.registered_groups}:
        return [str(servers.BIN / "nlu-mlflow"), "webhooks", "serve"]
    return [sys.executable, "-m", "nlu_mlflow.cli", "webhooks", "serve"]


def start_receiver(stack: Stack, *extra: str) -> None:
    port = servers.free_port()
    log = stack.home / f"receiver-{len(stack.logs) + 1}.log"
    stack.logs.append(log)
    cmd = [
        *serve_command(),
        "--port", str(port),
        "--model-name", MODEL,
        "--rasa-url", stack.rasa.url,
        "--work-dir", str(stack.work_dir),
        "--tracking-uri", stack.mlflow_url,
        "--retry-backoff", "1",
        *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        SECRET_ENV: stack.secret,
        RASA_TOKEN_ENV: stack.rasa.token,
        SLACK_URL_ENV: stack.sink.url,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    }
    with open(log, "ab") as out:
        stack.receiver = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    stack.receiver_url = f"http://127.0.0.1:{port}"
    servers.wait_http(f"{stack.receiver_url}/health", timeout=90, proc=stack.receiver)


def invoke(stack: Stack, args: list[str], **env: str):
    result = CliRunner().invoke(nlu_mlflow_app(), args, env={"MLFLOW_TRACKING_URI": stack.mlflow_url, **env})
    stack.cli_output.append(result.output)
    return result


@pytest.fixture(scope="module")
def stack(rasa_api, logreg_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("webhooks_e2e")
    previous = mlflow.get_tracking_uri()
    secret = "whsec-" + secrets.token_hex(16)
    slack_path = f"/services/T0000/B0000/{secrets.token_hex(12)}"  # a Slack URL is a secret too
    started = time.perf_counter()
    with (
        servers.mlflow_server(
            f"sqlite:///{home / 'mlflow.db'}", home / "artifacts", home / "mlflow.log", workers=1
        ) as url,
        servers.slack_sink(slack_path) as sink,
    ):
        mlflow.set_tracking_uri(url)
        experiment = mlflow.create_experiment("webhooks-e2e")
        with mlflow.start_run(experiment_id=experiment):
            model_uri = pyfunc_model.log_model(logreg_model.archive).model_uri
        stack = Stack(home, url, home / "mlflow.log", experiment, model_uri, rasa_api, sink, secret)
        start_receiver(stack)
        registered = invoke(
            stack, ["webhooks", "register", "--url", f"{stack.receiver_url}/webhook"], **{SECRET_ENV: secret}
        )
        assert registered.exit_code == 0, registered.output
        assert "test delivery answered 200" in registered.output
        TIMINGS["stack up (mlflow server, model logged, receiver, webhook)"] = time.perf_counter() - started
        yield stack
        if stack.receiver is not None:
            servers.stop(stack.receiver)
    mlflow.set_tracking_uri(previous)
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))


def promote(stack: Stack, model_uri: str | None = None) -> str:
    version = registry.register(model_uri or stack.model_uri, MODEL, VERSION_TAGS).version
    registry.move_production(MODEL, version)
    return version


def webhook_failures(stack: Stack) -> int:
    return stack.mlflow_log_text().count(f"Failed to send webhook to {stack.receiver_url}")


# --- the tests, in order ---


def promote_by_workflow(stack: Stack, home: Path) -> str:
    """A real `workflow.run` against the server: trains, registers and promotes (first production)."""
    from nlu_mlflow.workflow import run as workflow
    from nlu_mlflow.workflow import settings
    from tests.helpers import CONFIGS, PIZZA

    values = {
        "data": PIZZA / "train.yml", "test_data": PIZZA / "test.yml", "configs": CONFIGS / "logreg_crf.yml",
        "epochs": 1, "tracking_uri": stack.mlflow_url, "model_name": MODEL, "project_dir": home,
        "experiment": "webhooks-e2e",
    }  # fmt: skip
    result = workflow.run(settings.build(values))
    assert result.outcome.promoted, result.outcome.message
    return result.outcome.version.version


@pytest.mark.parametrize("round_", ["workflow promotion", "second promotion"])
def test_a_promotion_makes_rasa_serve_it_and_is_announced_once(stack, round_, tmp_path):
    before = len(stack.sink.messages)
    started = time.perf_counter()
    version = promote_by_workflow(stack, tmp_path) if round_ == "workflow promotion" else promote(stack)

    archive = deployed_file_name(MODEL, version)
    servers.wait_until(lambda: stack.serving() == archive, 90, f"Rasa serving {archive}")
    TIMINGS[f"{round_}: alias set -> Rasa /status reports it"] = time.perf_counter() - started
    servers.wait_until(lambda: len(stack.sink.messages) > before, 30, "the announcement")
    TIMINGS[f"{round_}: alias set -> message received"] = time.perf_counter() - started
    time.sleep(2)  # the version's other events (registered, previous-production) are delivered by now

    assert len(stack.sink.messages) == before + 1, stack.sink.texts()
    assert stack.sink.texts()[-1].startswith(f"{MODEL} version {version} (logreg_crf) is live")
    assert stack.rasa.loads_of(archive) == 1
    assert f"registered {MODEL} version {version}: acknowledged" in stack.receiver_log()


def test_a_corrupt_version_keeps_the_old_model_and_is_announced_once(stack, tmp_path):
    serving, before, failed_before = stack.serving(), len(stack.sink.messages), webhook_failures(stack)
    started = time.perf_counter()
    version = promote(stack, log_bad_model(stack.experiment_id, "traversal", tmp_path))

    def failed():
        return [r for r in deliveries(stack) if f"version {version} not loaded" in r["outcome"]]

    [record] = servers.wait_until(failed, 60, "the failure in the delivery log")
    TIMINGS["corrupt version: alias set -> failure recorded"] = time.perf_counter() - started

    assert (record["status"], record["attempts"]) == ("failed", 1)  # the same bytes fail again: no retry
    assert stack.serving() == serving
    failures = stack.sink.texts()[before:]  # posted before the record was finished
    assert len(failures) == 1, failures
    assert failures[0].startswith(f"{MODEL} version {version} (logreg_crf) failed to go live")
    assert f"keeps serving {serving}" in failures[0]
    assert webhook_failures(stack) == failed_before  # answered at once: MLflow resent nothing


def deliveries(stack: Stack) -> list[dict]:
    return requests.get(f"{stack.receiver_url}/deliveries", params={"limit": 50}, timeout=10).json()[
        "deliveries"
    ]


def test_a_receiver_down_during_delivery_is_healed_by_sync_rasa(stack):
    servers.stop(stack.receiver)
    serving, failed_before = stack.serving(), webhook_failures(stack)
    version = promote(stack)
    # registered, production and previous-production: each tried 4 times, then dropped by MLflow
    servers.wait_until(lambda: webhook_failures(stack) >= failed_before + 3, 60, "MLflow dropping the events")
    assert stack.serving() == serving

    started = time.perf_counter()
    args = [
        "sync-rasa",
        "--model-name",
        MODEL,
        "--rasa-url",
        stack.rasa.url,
        "--work-dir",
        str(stack.work_dir),
    ]
    env = {RASA_TOKEN_ENV: stack.rasa.token, SLACK_URL_ENV: stack.sink.url}
    healed = invoke(stack, args, **env)
    TIMINGS["sync-rasa: command -> Rasa serves production"] = time.perf_counter() - started

    assert healed.exit_code == 0, healed.output
    assert f"now serves {MODEL} version {version}" in healed.output
    assert stack.serving() == deployed_file_name(MODEL, version)
    assert stack.sink.texts()[-1].startswith(f"{MODEL} version {version} (logreg_crf) is live")
    again = invoke(stack, args, **env)
    assert (again.exit_code, f"already serves {MODEL} version {version}" in again.output) == (0, True)


def test_a_receiver_with_a_sync_interval_heals_on_its_own(stack):
    assert stack.receiver.poll() is not None  # still down since the previous test
    failed_before = webhook_failures(stack)
    version = promote(stack)
    servers.wait_until(lambda: webhook_failures(stack) >= failed_before + 3, 60, "MLflow dropping the events")

    started = time.perf_counter()
    start_receiver(stack, "--sync-interval", "2")
    archive = deployed_file_name(MODEL, version)
    servers.wait_until(lambda: stack.serving() == archive, 60, f"Rasa serving {archive}")
    TIMINGS["receiver restart with --sync-interval -> Rasa serves production"] = time.perf_counter() - started
    servers.wait_until(lambda: stack.sink.texts()[-1].startswith(f"{MODEL} version {version}"), 30, "message")


def test_registering_again_updates_the_same_webhook(stack):
    again = invoke(
        stack,
        ["webhooks", "register", "--url", f"{stack.receiver_url}/webhook", "--no-ping"],
        **{SECRET_ENV: stack.secret},
    )
    assert again.exit_code == 0, again.output
    ids = [re.search(r"\(([0-9a-f-]{36})\)", out).group(1) for out in (stack.cli_output[0], again.output)]
    assert ids[0] == ids[1]
    assert [hook.url for hook in mlflow.MlflowClient().list_webhooks()] == [f"{stack.receiver_url}/webhook"]


def test_no_secret_reaches_a_log_or_a_message(stack):
    secrets_used = {
        "webhook secret": stack.secret,
        "rasa token": stack.rasa.token,
        "slack url": stack.sink.url,
        "slack url path": stack.sink.url.rsplit("/", 1)[-1],
    }
    texts = {
        "receiver logs": stack.receiver_log(),
        "mlflow server log": stack.mlflow_log_text(),
        "rasa server log": stack.rasa.log.read_text(errors="replace"),
        "command output": "\n".join(stack.cli_output),
        "messages": json.dumps(stack.sink.messages),
    }
    assert (
        "live as" in texts["receiver logs"] and "not loaded" in texts["receiver logs"]
    )  # the logs say things
    leaks = [
        (s, where) for s, value in secrets_used.items() for where, text in texts.items() if value in text
    ]
    assert leaks == []


def test_mlflow_signed_every_delivery_the_receiver_accepted(stack):
    assert "delivery refused" not in stack.receiver_log()
    assert c.ALIAS_PRODUCTION in stack.receiver_log()
