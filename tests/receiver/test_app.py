"""The webhook receiver over real HTTP (the app in-process under uvicorn), a real SQLite registry and,
where a model is loaded, a real `rasa run --enable-api --auth-token` (session fixture `rasa_api`).

Deliveries are signed here the way MLflow signs them (tests/test_signature.py pins the agreement;
tests/test_webhooks_e2e.py has MLflow itself deliver). A production delivery is answered 202 at once and
handled by the receiver's worker thread; tests wait for its record in the delivery log. Where no model
may be loaded, the receiver points at a port nothing listens on.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import secrets
import socket
import tarfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
import typer
from typer.testing import CliRunner

from nlu_mlflow import constants as c
from nlu_mlflow.cli.webhooks import RASA_TOKEN_ENV, SECRET_ENV, sync_rasa, webhooks_app
from nlu_mlflow.rasa.server import RasaServer, RasaServerError
from nlu_mlflow.receiver import deploy
from nlu_mlflow.receiver.app import STATE_FILE, Receiver, ReceiverSettings, create_app
from nlu_mlflow.receiver.deliveries import PENDING, STATUS_DONE, STATUS_FAILED, STATUS_QUEUED, DeliveryLog
from nlu_mlflow.receiver.deploy import DeployError, deploy_version, deployed_file_name
from nlu_mlflow.receiver.signature import HEADER_DELIVERY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.tracking import registry
from nlu_mlflow.tracking.pyfunc_model import RasaNLUModel
from tests.helpers import servers

MODEL = "rasa-nlu-hooks"
SECRET = "whsec-" + secrets.token_hex(16)
VERSION_TAGS = {
    c.TAG_CONFIG: "logreg_crf",
    "primary_metric": c.INTENT_F1_WEIGHTED,
    c.INTENT_F1_WEIGHTED: "0.900000",
    c.CRITICAL_PASS_RATE: "1.000000",
    f"nlu_mlflow.delta.{c.INTENT_F1_WEIGHTED}": "+0.010000",
    c.TAG_DECISION: c.DECISION_PROMOTED,
    c.TAG_DECISION_REASONS: "intent_f1_weighted 0.9000 >= 0.8900 + 0.0000; critical pass rate 1.00 >= 1.00",
}


# --- helpers ---


def event(entity: str, data: dict, action: str = "created") -> bytes:
    return json.dumps(
        {"entity": entity, "action": action, "timestamp": "2026-11-21T00:00:00Z", "data": data}
    ).encode()


def alias_event(version: str, alias: str = c.ALIAS_PRODUCTION, name: str = MODEL) -> bytes:
    return event("model_version_alias", {"name": name, "alias": alias, "version": str(version)})


def signed(body: bytes, delivery_id: str | None = None, timestamp: int | None = None, secret: str = SECRET):
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        HEADER_DELIVERY_ID: delivery_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, delivery_id, timestamp, body),
        "Content-Type": "application/json",
    }


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(f"{url}/webhook", data=body, headers=headers, timeout=120)


def dead_rasa() -> RasaServer:
    return RasaServer(f"http://127.0.0.1:{servers.free_port()}", "unused-token")


@dataclass
class Running:
    url: str
    work_dir: Path
    stop: contextlib.ExitStack

    def deliveries(self):
        return DeliveryLog(self.work_dir / STATE_FILE).all()

    def finished(self, delivery_id: str, timeout: float = 120):
        """The delivery's record once the worker is done with it."""

        def done():
            record = DeliveryLog(self.work_dir / STATE_FILE).get(delivery_id)
            return record if record is not None and record.status not in PENDING else None

        return servers.wait_until(done, timeout, f"delivery {delivery_id} finished")


def settings(rasa: RasaServer, work_dir: Path, slack_url: str) -> ReceiverSettings:
    """The receiver's settings in these tests: two tries of a failed load, 0.1 s apart."""
    return ReceiverSettings(MODEL, rasa, work_dir, SECRET, slack_url, load_tries=2, retry_backoff_s=0.1)


@pytest.fixture()
def sink():
    with servers.slack_sink() as recorded:
        yield recorded


@pytest.fixture()
def receiver(tmp_path, sink):
    """Start receivers: ``receiver(rasa, work_dir=None)``; all are stopped after the test."""
    stacks: list[contextlib.ExitStack] = []

    def start(rasa: RasaServer, work_dir: Path | None = None) -> Running:
        work_dir = work_dir or tmp_path / "deploy"
        stack = contextlib.ExitStack()
        stacks.append(stack)
        app = create_app(settings(rasa, work_dir, sink.url))
        return Running(stack.enter_context(servers.uvicorn_thread(app)), work_dir, stack)

    yield start
    for stack in reversed(stacks):
        stack.close()


@dataclass(frozen=True)
class Store:
    uri: str
    model_uri: str
    experiment_id: str


@pytest.fixture(scope="module")
def store(logreg_model, tmp_path_factory):
    """A SQLite registry holding the logreg model as a logged pyfunc (register versions from it)."""
    root = tmp_path_factory.mktemp("hooks_store")
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("hooks", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = pyfunc_model.log_model(logreg_model.archive)
    yield Store(uri, info.model_uri, experiment)
    mlflow.set_tracking_uri(previous)


def make_production(store: Store, model_uri: str | None = None, tags: dict | None = None) -> str:
    version = registry.register(model_uri or store.model_uri, MODEL, tags or VERSION_TAGS).version
    mlflow.MlflowClient().set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, version)
    return version


def bad_archive(kind: str, path: Path) -> Path:
    """A .tar.gz with one member of ``kind``: what an attacker or a broken upload could put in the store."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo({"traversal": "../evil.txt", "absolute": "/tmp/evil.txt"}.get(kind, "evil"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        data = b"not a rasa model" if info.type == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def log_bad_model(experiment_id: str, kind: str, tmp_path: Path) -> str:
    """Log a pyfunc whose Rasa archive is ``bad_archive(kind)`` (no input example: nothing loads it here)."""
    archive = bad_archive(kind, tmp_path / f"{kind}.tar.gz")
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RasaNLUModel(),
            artifacts={c.ARTIFACT_ARCHIVE: str(archive)},
            pip_requirements=pyfunc_model.pip_requirements(),
        )
    return info.model_uri


# --- refused and ignored deliveries: nothing loaded, nothing announced ---


@pytest.mark.parametrize(
    ("_case", "mutate", "status", "message"),
    [
        ("no delivery id", lambda h: h.pop(HEADER_DELIVERY_ID), 400, "missing header X-MLflow-Delivery-Id"),
        ("no timestamp", lambda h: h.pop(HEADER_TIMESTAMP), 400, "missing header X-MLflow-Timestamp"),
        ("no signature", lambda h: h.pop(HEADER_SIGNATURE), 400, "missing header X-MLflow-Signature"),
        (
            "wrong signature",
            lambda h: h.update({HEADER_SIGNATURE: "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
            401,
            "does not match",
        ),
    ],
)
def test_a_delivery_without_a_valid_signature_is_refused(receiver, sink, _case, mutate, status, message):
    running = receiver(dead_rasa())
    headers = signed(alias_event("1"))
    mutate(headers)
    answer = post(running.url, alias_event("1"), headers)
    assert (answer.status_code, message in answer.json()["error"]) == (status, True)
    assert SECRET not in answer.text
    assert (sink.messages, running.deliveries()) == ([], [])


@pytest.mark.parametrize(("_case", "age"), [("6 minutes old", 360), ("2 minutes ahead", -120)])
def test_a_delivery_outside_the_time_window_is_refused(receiver, sink, _case, age):
    running = receiver(dead_rasa())
    body = alias_event("1")
    answer = post(running.url, body, signed(body, timestamp=int(time.time()) - age))
    assert answer.status_code == 401
    assert (sink.messages, running.deliveries()) == ([], [])


def test_a_signed_body_that_is_not_a_webhook_payload_is_a_bad_request(receiver):
    running = receiver(dead_rasa())
    body = b'{"hello": "world"}'
    assert post(running.url, body, signed(body)).status_code == 400


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (
            event("model_version", {"name": MODEL, "version": "7", "source": "models:/m-1"}),
            "registered rasa-nlu-hooks version 7",
        ),
        (alias_event("7", alias="staging"), "alias 'staging' on rasa-nlu-hooks version 7: not production"),
        (
            alias_event("7", name="another-model"),
            "alias 'production' on another-model version 7: not production",
        ),
        (event("registered_model", {"name": MODEL, "tags": {}}), "registered_model.created: not handled"),
    ],
)
def test_other_events_are_acknowledged_without_loading(receiver, sink, body, outcome):
    running = receiver(dead_rasa())
    answer = post(running.url, body, signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"].startswith(outcome)
    assert sink.messages == []
    assert [r.status for r in running.deliveries()] == [STATUS_DONE]


# --- the worker: every outcome recorded, the next delivery still handled ---


@pytest.fixture()
def dead_registry():
    """MLflow pointed at a port nothing listens on, with no HTTP retries: the registry is unreachable."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"http://127.0.0.1:{servers.free_port()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        patch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        yield
    mlflow.set_tracking_uri(previous)


@pytest.mark.usefixtures("dead_registry")
def test_a_registry_outage_and_an_unexpected_error_are_recorded_and_the_worker_goes_on(
    receiver, sink, monkeypatch
):
    running = receiver(dead_rasa())
    outage = signed(alias_event("1"), delivery_id="outage")
    assert post(running.url, alias_event("1"), outage).status_code == 202
    record = running.finished("outage")
    assert (record.status, record.attempts) == (STATUS_FAILED, 2), record
    assert "(try 2 of 2)" in record.outcome and "127.0.0.1" in record.outcome
    assert len(sink.messages) == 1 and sink.texts()[0].startswith(f"{MODEL}: nothing went live")

    def broken(*_args):
        raise KeyError("a bug")

    monkeypatch.setattr(deploy, "sync", broken)  # stands in for a bug in the deploy step
    assert post(running.url, alias_event("2"), signed(alias_event("2"), delivery_id="bug")).status_code == 202
    record = running.finished("bug")
    assert (record.status, record.outcome) == (STATUS_FAILED, "unexpected error KeyError: 'a bug'")
    assert sink.texts()[1].startswith(f"{MODEL}: nothing went live. unexpected error KeyError")
    assert (
        post(running.url, alias_event("3"), signed(alias_event("3"), delivery_id="after")).status_code == 202
    )
    assert running.finished("after").status == STATUS_FAILED  # handled: the worker outlived the bug


def test_deliveries_and_health_show_what_happened_without_secrets(receiver, sink):
    running = receiver(dead_rasa())
    body = event("model_version", {"name": MODEL, "version": "4"})
    post(running.url, body, signed(body, delivery_id="seen-1"))
    post(running.url, body, signed(body, delivery_id="seen-2"))

    shown = requests.get(f"{running.url}/deliveries", params={"limit": 1}, timeout=10)
    assert shown.status_code == 200
    [latest] = shown.json()["deliveries"]
    assert (latest["delivery_id"], latest["status"]) == ("seen-2", STATUS_DONE)
    assert set(latest) == {
        "delivery_id",
        "event",
        "status",
        "outcome",
        "attempts",
        "received_at",
        "updated_at",
    }
    assert SECRET not in shown.text and sink.url not in shown.text
    assert requests.get(f"{running.url}/deliveries", params={"limit": 0}, timeout=10).status_code == 422
    assert requests.get(f"{running.url}/health", timeout=10).json() == {"status": "ok", "pending": 0}


# --- production deliveries against a real Rasa server ---


@pytest.mark.slow
def test_production_is_answered_at_once_loaded_after_and_announced_once_for_a_duplicate(
    rasa_api, store, receiver, sink
):
    running = receiver(RasaServer(rasa_api.url, rasa_api.token))
    version = make_production(store)
    body, headers = alias_event(version), signed(alias_event(version), delivery_id="dup-1")

    first, again = post(running.url, body, headers), post(running.url, body, headers)

    assert (first.status_code, first.json()) == (202, {"outcome": STATUS_QUEUED, "delivery_id": "dup-1"})
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    record = running.finished("dup-1")
    archive = deployed_file_name(MODEL, version)
    assert (record.status, record.outcome.startswith(f"version {version} live")) == (STATUS_DONE, True), (
        record
    )
    assert rasa_api.status()["model_file"] == archive
    assert rasa_api.loads_of(archive) == 1
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["text"].startswith(f"{MODEL} version {version} (logreg_crf) is live")
    rendered = json.dumps(message["blocks"])
    assert "*intent_f1_weighted*\\n0.9000 (+0.0100)" in rendered
    assert "critical pass rate 1.00 >= 1.00" in rendered


@pytest.mark.slow
def test_a_restarted_receiver_still_knows_a_handled_delivery(rasa_api, store, receiver, sink, tmp_path):
    rasa = RasaServer(rasa_api.url, rasa_api.token)
    version = make_production(store)
    body = alias_event(version)
    headers = signed(body, delivery_id="restart-1")
    first = receiver(rasa, tmp_path / "work")
    assert post(first.url, body, headers).status_code == 202
    first.finished("restart-1")
    first.stop.close()

    second = receiver(rasa, tmp_path / "work")
    answer = post(second.url, body, headers)

    assert answer.json() == {"outcome": "duplicate", "status": STATUS_DONE}
    assert rasa_api.loads_of(deployed_file_name(MODEL, version)) == 1
    assert len(sink.messages) == 1


@pytest.mark.slow
def test_a_restarted_receiver_resumes_accepted_deliveries_in_order(rasa_api, store, receiver, sink, tmp_path):
    rasa = RasaServer(rasa_api.url, rasa_api.token)
    version = make_production(store)
    stopped = Receiver(settings(rasa, tmp_path / "work", sink.url))  # accepts, but its worker never ran
    for delivery_id in ("resume-b", "resume-a"):
        reply = stopped.handle(signed(alias_event(version), delivery_id=delivery_id), alias_event(version))
        assert reply.status_code == 202
    assert rasa_api.status()["model_file"] != deployed_file_name(MODEL, version)

    running = receiver(rasa, tmp_path / "work")

    first, second = running.finished("resume-b"), running.finished("resume-a")
    assert first.outcome.startswith(f"version {version} live as")  # the first accepted did the load
    assert second.outcome.startswith(f"version {version} already live")
    assert first.updated_at <= second.updated_at
    assert rasa_api.status()["model_file"] == deployed_file_name(MODEL, version)
    assert len(sink.messages) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "tries"),
    [("traversal", 1), ("absolute", 1), ("symlink", 1), ("device", 1), ("fifo", 1), ("not a rasa model", 2)],
)
def test_a_bad_archive_keeps_the_old_model_and_is_announced_once(
    rasa_api, store, receiver, sink, tmp_path, kind, tries
):
    """An archive failing its check is not tried again (the same bytes fail again); one Rasa refuses is
    tried ``load_tries`` times. Either way one message, whatever MLflow resends."""
    running = receiver(RasaServer(rasa_api.url, rasa_api.token))
    serving = rasa_api.status()
    version = make_production(store, log_bad_model(store.experiment_id, kind, tmp_path))
    body, headers = alias_event(version), signed(alias_event(version), delivery_id=f"bad-{kind}")

    answers = [post(running.url, body, headers) for _ in range(2)]  # the second: a resend by MLflow
    record = running.finished(f"bad-{kind}")

    assert [a.status_code for a in answers] == [202, 200]
    assert (record.status, record.attempts) == (STATUS_FAILED, tries)
    assert rasa_api.status() == serving
    assert len(sink.messages) == 1, sink.texts()
    assert sink.messages[0]["text"].startswith(f"{MODEL} version {version} (logreg_crf) failed to go live")
    assert f"keeps serving {serving['model_file']}" in sink.messages[0]["text"]
    expected = "could not be loaded" if kind == "not a rasa model" else "link or device or leaves"
    assert expected in sink.messages[0]["text"] and expected in record.outcome
    assert not (running.work_dir / deployed_file_name(MODEL, version)).exists()
    assert not (running.work_dir.parent / "evil.txt").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("store")
def test_deploying_a_missing_version_names_it(tmp_path):
    with pytest.raises(DeployError, match="model 'rasa-nlu-hooks' has no version 999"):
        deploy_version(MODEL, "999", dead_rasa(), tmp_path)


# --- the Rasa server's API must be protected ---


@pytest.mark.slow
def test_a_protected_rasa_server_is_accepted_and_a_wrong_token_refused(rasa_api):
    assert RasaServer(rasa_api.url, rasa_api.token).is_open() is False
    RasaServer(rasa_api.url, rasa_api.token).ensure_protected()
    assert RasaServer(rasa_api.url, rasa_api.token).has_dialogue() is False  # it serves an NLU-only model
    with pytest.raises(RasaServerError, match="refused the token") as raised:
        RasaServer(rasa_api.url, "wrong-token").status()
    assert "wrong-token" not in str(raised.value)


@contextlib.contextmanager
def open_rasa_api():
    """Stands in for `rasa run --enable-api` started WITHOUT --auth-token (every endpoint answers
    anyone; measured, docs/notes ENVIRONMENT.md). A local fake only to save a second 30-60 s Rasa
    start: it answers /status and records any other request."""
    requests_seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"model_file": "old.tar.gz", "model_id": "x"}')

        def do_PUT(self):
            requests_seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests_seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_open_rasa_api_is_refused_unless_allowed(tmp_path):
    with open_rasa_api() as (url, puts):
        assert RasaServer(url, "token").is_open() is True
        with pytest.raises(RasaServerError, match="open API .* --auth-token"):
            RasaServer(url, "token").load_model(tmp_path / "m.tar.gz")
        assert puts == []
        RasaServer(url, None, allow_open_api=True).load_model(tmp_path / "m.tar.gz")
        assert len(puts) == 1


# --- the commands ---


def nlu_mlflow_app() -> typer.Typer:
    """The `nlu-mlflow` app; until cli.py mounts these commands, mounted here the same way."""
    from nlu_mlflow.cli import app

    if "webhooks" in {group.name for group in app.registered_groups}:
        return app
    app = typer.Typer()
    app.add_typer(webhooks_app, name="webhooks")
    app.command("sync-rasa")(sync_rasa)
    return app


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["sync-rasa"], {RASA_TOKEN_ENV: ""}, "set $RASA_AUTH_TOKEN"),
        (["webhooks", "serve"], {SECRET_ENV: ""}, "set $NLU_MLFLOW_WEBHOOK_SECRET"),
        (
            ["webhooks", "register", "--url", "http://127.0.0.1:1/webhook"],
            {SECRET_ENV: ""},
            "set $NLU_MLFLOW_WEBHOOK_SECRET",
        ),
    ],
)
def test_commands_need_their_secrets_from_the_environment(args, env, message):
    result = CliRunner().invoke(nlu_mlflow_app(), args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_refuses_an_open_rasa_api(tmp_path):
    with open_rasa_api() as (url, _):
        env = {SECRET_ENV: SECRET, RASA_TOKEN_ENV: "token"}
        result = CliRunner().invoke(
            nlu_mlflow_app(), ["webhooks", "serve", "--rasa-url", url, "--work-dir", str(tmp_path)], env=env
        )
    assert result.exit_code == 2, result.output
    assert "open API (no --auth-token)" in result.output


def raw_post(url: str, head: str, chunks) -> tuple[int, float]:
    """Send a request by hand; the HTTP status and the seconds until it came, however much body was sent."""
    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"POST /webhook HTTP/1.1\r\nHost: {parts.hostname}\r\n{head}\r\n".encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:  # the receiver closed the connection after refusing: what the test wants
            pass
        status_line = sock.recv(64).split(b"\r\n")[0]
    return int(status_line.split()[1]), time.monotonic() - started


def test_an_oversized_body_is_refused_with_413_before_it_is_read(receiver, sink):
    running = receiver(dead_rasa())
    # declares 400 MB, sends 1 KB: a receiver that read before checking would wait for the rest (10 s timeout)
    status, seconds = raw_post(running.url, "Content-Length: 400000000\r\n", [b"x" * 1024])
    assert (status, seconds < 5) == (413, True)
    # chunked without a length: refused after the limit, not after the 8 MB the client is sending
    chunk = b"x" * 65536
    framed = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(128))
    status, _ = raw_post(running.url, "Transfer-Encoding: chunked\r\n", framed)
    assert status == 413
    assert (sink.messages, running.deliveries()) == ([], [])
    small = alias_event("1")
    assert (
        post(running.url, small, {}).status_code != 413
    )  # an ordinary body still reaches the signature check
