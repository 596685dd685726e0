"""End to end with a full assistant: `rasa run --enable-api --auth-token` serves a model trained from
data/pizza-assistant (NLU and dialogue), a real `mlflow server` delivers registry events to the receiver
(`webhooks serve` in a subprocess), and a local sink stands in for Slack.

Shown: a promoted full assistant is answered at once and goes live after the answer (its load takes
longer than MLflow's patience would allow under the old in-request load), then answers a conversation;
an NLU-only version is refused, and the assistant keeps serving and answering. The models are trained
once here with Rasa's public API, epochs capped; the tests run in order on one stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
import yaml

from nlu_mlflow.cli.webhooks import RASA_TOKEN_ENV, SECRET_ENV, SLACK_URL_ENV
from nlu_mlflow.console import library_output
from nlu_mlflow.decide.model_kind import KIND_FULL, KIND_NLU
from nlu_mlflow.rasa import runtime
from nlu_mlflow.rasa.archive import archive_kind
from nlu_mlflow.rasa.server import RasaServer
from nlu_mlflow.receiver.deliveries import STATUS_DONE, STATUS_REFUSED
from nlu_mlflow.receiver.deploy import deployed_file_name, served_kind
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.tracking import registry
from tests.helpers import CONFIGS, ROOT, servers
from tests.receiver.test_app import VERSION_TAGS, alias_event, nlu_mlflow_app, post, signed
from tests.receiver.test_webhooks_e2e import serve_command

pytestmark = pytest.mark.slow

MODEL = "pizza-assistant-e2e"
ASSISTANT = ROOT / "data" / "pizza-assistant"
EPOCHS = 5  # enough for "hi" -> utter_greet on this data (rules answer it once the intent is right)
CAPPED = ("DIETClassifier", "ResponseSelector", "TEDPolicy")
GREETING = yaml.safe_load((ASSISTANT / "domain.yml").read_text())["responses"]["utter_greet"][0]["text"]
TIMINGS: dict[str, float] = {}


@dataclass
class Stack:
    home: Path
    mlflow_url: str
    rasa: servers.RasaApi
    sink: servers.Sink
    secret: str
    archives: dict[str, Path]
    model_uris: dict[str, str]
    receiver_url: str = ""
    receiver_log: Path | None = None

    @property
    def work_dir(self) -> Path:
        return self.home / "deploy"

    def serving(self) -> str | None:
        """What Rasa reports it serves; None while it is busy loading (it answers nothing meanwhile)."""
        with contextlib.suppress(requests.RequestException, ValueError):
            return self.rasa.status().get("model_file")
        return None

    def deliveries(self) -> list[dict]:
        answer = requests.get(f"{self.receiver_url}/deliveries", params={"limit": 50}, timeout=10)
        return answer.json()["deliveries"]

    def webhook_failures(self) -> int:
        text = (self.home / "mlflow.log").read_text(errors="replace")
        return text.count(f"Failed to send webhook to {self.receiver_url}")


def capped_config(path: Path, seed: int) -> Path:
    """The assistant's config.yml with the TensorFlow components' epochs capped and their seed set."""
    config = yaml.safe_load((ASSISTANT / "config.yml").read_text())
    for component in config["pipeline"] + config["policies"]:
        if component["name"] in CAPPED:
            component.update(epochs=EPOCHS, random_seed=seed)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_full(home: Path, name: str, seed: int) -> Path:
    from rasa.model_training import train

    with library_output():  # progress bars
        result = train(
            domain=str(ASSISTANT / "domain.yml"),
            config=str(capped_config(home / f"{name}.config.yml", seed)),
            training_files=[str(ASSISTANT / "data")],
            output=str(home),
            fixed_model_name=name,
        )
    assert result.code == 0 and result.model, f"training {name} failed ({result.code})"
    return Path(result.model)


def train_nlu_only(home: Path) -> Path:
    """The project's NLU data alone (`rasa train nlu`), with the light pipeline: no TensorFlow, seconds."""
    from rasa.model_training import train_nlu

    with library_output():
        archive = train_nlu(
            config=str(CONFIGS / "logreg_crf.yml"),
            nlu_data=str(ASSISTANT / "data" / "nlu"),
            output=str(home),
            fixed_model_name="nlu-only",
        )
    return Path(archive)


def log_models(archives: dict[str, Path]) -> dict[str, str]:
    experiment = mlflow.create_experiment("full-assistant-e2e")
    uris = {}
    for name, archive in archives.items():
        with mlflow.start_run(experiment_id=experiment, run_name=name):
            uris[name] = pyfunc_model.log_model(archive).model_uri
    return uris


def start_receiver(stack: Stack) -> subprocess.Popen:
    port = servers.free_port()
    stack.receiver_log = stack.home / "receiver.log"
    cmd = [
        *serve_command(),
        "--port", str(port), "--model-name", MODEL, "--rasa-url", stack.rasa.url,
        "--work-dir", str(stack.work_dir), "--tracking-uri", stack.mlflow_url,
        "--load-tries", "2", "--retry-backoff", "1",
    ]  # fmt: skip
    env = {
        **os.environ,
        SECRET_ENV: stack.secret,
        RASA_TOKEN_ENV: stack.rasa.token,
        SLACK_URL_ENV: stack.sink.url,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    }
    with open(stack.receiver_log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack.receiver_url = f"http://127.0.0.1:{port}"
    servers.wait_http(f"{stack.receiver_url}/health", timeout=90, proc=proc)
    return proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Train the first full model, start Rasa on it and the MLflow server, train the other two models
    while they start, log all three, then start the receiver and register the webhook."""
    home = tmp_path_factory.mktemp("full_assistant_e2e")
    runtime.quiet_rasa()
    previous = mlflow.get_tracking_uri()
    started = time.perf_counter()
    archives = {"full-1": train_full(home, "full-1", seed=1)}
    token, secret = "rasa-token-" + secrets.token_hex(12), "whsec-" + secrets.token_hex(16)
    with contextlib.ExitStack() as stop:
        rasa = stop.enter_context(
            servers.rasa_server(archives["full-1"], token, home / "rasa.log", rest_channel=True, wait=False)
        )
        url = stop.enter_context(
            servers.mlflow_server(
                f"sqlite:///{home / 'mlflow.db'}", home / "artifacts", home / "mlflow.log", 1
            )
        )
        sink = stop.enter_context(servers.slack_sink(f"/services/T1/B1/{secrets.token_hex(12)}"))
        archives["full-2"] = train_full(home, "full-2", seed=2)
        archives["nlu"] = train_nlu_only(home)
        mlflow.set_tracking_uri(url)
        stack = Stack(home, url, rasa, sink, secret, archives, log_models(archives))
        rasa.wait_ready(300)
        stop.callback(servers.stop, start_receiver(stack))
        registered = nlu_mlflow_app_invoke(
            ["webhooks", "register", "--url", f"{stack.receiver_url}/webhook"], url, {SECRET_ENV: secret}
        )
        assert registered.exit_code == 0 and "test delivery answered 200" in registered.output, (
            registered.output
        )
        TIMINGS["stack up (3 models trained, rasa, mlflow server, receiver)"] = time.perf_counter() - started
        yield stack
    mlflow.set_tracking_uri(previous)
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))


def nlu_mlflow_app_invoke(args: list[str], tracking_uri: str, env: dict[str, str]):
    from typer.testing import CliRunner

    return CliRunner().invoke(nlu_mlflow_app(), args, env={"MLFLOW_TRACKING_URI": tracking_uri, **env})


def promote(stack: Stack, name: str) -> str:
    version = registry.register(stack.model_uris[name], MODEL, VERSION_TAGS).version
    registry.move_production(MODEL, version)
    return version


# --- the tests, in order ---


def test_the_archives_and_the_server_say_what_kind_of_model_they_hold(stack):
    kinds = {name: archive_kind(path) for name, path in stack.archives.items()}
    assert kinds == {"full-1": KIND_FULL, "full-2": KIND_FULL, "nlu": KIND_NLU}
    rasa = RasaServer(stack.rasa.url, stack.rasa.token)
    assert rasa.status().model_file == stack.archives["full-1"].name  # not in the work dir: Rasa is asked
    assert served_kind(rasa, stack.work_dir, rasa.status()) == KIND_FULL
    assert stack.rasa.say("hi", sender="before") == [GREETING]  # the first assistant answers


def test_a_promoted_full_assistant_is_answered_at_once_and_goes_live_after(stack):
    failures_before, messages_before = stack.webhook_failures(), len(stack.sink.messages)
    started = time.perf_counter()
    version = promote(stack, "full-2")  # MLflow delivers the event to the receiver
    body, delivery_id = alias_event(version, name=MODEL), f"direct-{uuid.uuid4()}"
    answer = post(stack.receiver_url, body, signed(body, delivery_id, secret=stack.secret))
    answered_at = time.time()
    TIMINGS["direct production delivery answered"] = time.perf_counter() - started

    archive = deployed_file_name(MODEL, version)

    def loaded():  # the delivery that did the load, once it is recorded done
        return [
            r for r in stack.deliveries() if r["outcome"].startswith(f"version {version} live as {archive}")
        ]

    [record] = servers.wait_until(loaded, 300, f"Rasa serving {archive}")
    TIMINGS["alias set -> second full model live"] = time.perf_counter() - started

    assert (answer.status_code, answer.json()["outcome"]) == (202, "queued")
    assert answered_at < record["updated_at"]  # the answer came before the load finished
    mine = servers.wait_until(
        lambda: [
            r for r in stack.deliveries() if r["delivery_id"] == delivery_id and r["status"] == STATUS_DONE
        ],
        60,
        "the direct delivery handled",
    )
    assert mine[0]["outcome"].startswith(f"version {version}")  # either it loaded or found it live
    assert stack.rasa.say("hi", sender="after-promotion") == [GREETING]
    assert stack.rasa.status()["model_file"] == archive
    assert stack.webhook_failures() == failures_before  # MLflow had every answer in time: nothing resent
    servers.wait_until(lambda: len(stack.sink.messages) > messages_before, 30, "the announcement")
    [message] = stack.sink.texts()[messages_before:]
    assert message.startswith(f"{MODEL} version {version} (logreg_crf) is live")


def test_an_nlu_only_version_is_refused_and_the_assistant_keeps_answering(stack):
    serving, messages_before = stack.serving(), len(stack.sink.messages)
    assert serving and serving.startswith(MODEL)  # the full assistant, from the receiver's work dir

    version = promote(stack, "nlu")

    def refused():
        found = [r for r in stack.deliveries() if f"version {version} not loaded" in r["outcome"]]
        return found[0] if found else None

    record = servers.wait_until(refused, 120, "the refusal in the delivery log")
    assert record["status"] == STATUS_REFUSED
    assert "NLU-only model and the server runs a full assistant" in record["outcome"]
    assert stack.rasa.status()["model_file"] == serving
    assert stack.rasa.say("hi", sender="after-refusal") == [GREETING]
    servers.wait_until(lambda: len(stack.sink.messages) > messages_before, 30, "the refusal message")
    [message] = stack.sink.texts()[messages_before:]
    assert message.startswith(f"{MODEL} version {version} (logreg_crf) was refused")
    assert "NLU-only model" in message and f"keeps serving {serving}" in message
    assert f"version {version} not loaded: it is an NLU-only model" in stack.receiver_log.read_text()
    assert stack.rasa.loads_of(deployed_file_name(MODEL, version)) == 0
    assert not (stack.work_dir / deployed_file_name(MODEL, version)).exists()


def test_sync_rasa_refuses_the_nlu_only_production_too(stack):
    serving = stack.serving()
    args = [
        "sync-rasa",
        "--model-name",
        MODEL,
        "--rasa-url",
        stack.rasa.url,
        "--work-dir",
        str(stack.work_dir),
    ]
    result = nlu_mlflow_app_invoke(args, stack.mlflow_url, {RASA_TOKEN_ENV: stack.rasa.token})
    assert result.exit_code == 1, result.output
    assert "it is an NLU-only model and the server runs a full assistant" in result.output
    assert stack.serving() == serving


def test_no_secret_reaches_a_log_or_a_message(stack):
    secrets_used = [stack.secret, stack.rasa.token, stack.sink.url.rsplit("/", 1)[-1]]
    texts = [
        stack.receiver_log.read_text(errors="replace"),
        (stack.home / "mlflow.log").read_text(errors="replace"),
        json.dumps(stack.sink.messages),
        json.dumps(stack.deliveries()),
    ]
    assert "live as" in texts[0] and "refused" in texts[0]
    assert [s for s in secrets_used if any(s in text for text in texts)] == []
