"""The webhook receiver: verify an MLflow delivery, store it, answer at once; a worker thread makes Rasa
serve production and tells the team.

Events (MLflow 3.5 has no stage event; the ``production`` alias is the source of truth):

- ``model_version_alias.created`` with alias ``production`` on the configured model: stored ``queued`` in
  the delivery log and answered 202 at once (MLflow waits 30 s for an answer and retries after that;
  loading a full assistant takes longer). The worker, one delivery at a time in arrival order, makes
  Rasa serve the alias holder read from the registry at that moment (normally the event's version; a
  late or out-of-order event thus never rolls Rasa back), then posts one message. A failed load is tried
  again ``load_tries`` times in all with a growing pause, then recorded ``failed`` and posted once; a
  refused load (an NLU-only model for a server running a full assistant) is recorded ``refused`` and
  posted once. Rasa keeps its old model in both cases.
- ``model_version.created``: recorded and answered 200, not announced. Every workflow run registers
  its best candidate, kept or not; the team hears about the versions that go live.
- anything else (other aliases, other models, MLflow's test ping): recorded, answered 200, nothing done.

A delivery id already in the log is acknowledged (200, ``duplicate``) and not queued twice. A restarted
receiver resumes, in order, the deliveries it had accepted but not finished. Every outcome, including a
registry outage or an unexpected error, is recorded; the worker goes on with the next delivery.
Deploys (worker and ``--sync-interval`` job) hold one lock, so two never race on ``PUT /model``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nlu_mlflow import constants as c
from nlu_mlflow.decide.redact import redact_text
from nlu_mlflow.rasa.server import RasaServer, RasaServerError
from nlu_mlflow.receiver import deploy, notify, signature
from nlu_mlflow.receiver.deliveries import (
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_QUEUED,
    STATUS_REFUSED,
    DeliveryLog,
    DeliveryRecord,
)
from nlu_mlflow.receiver.deploy import DeployError, DeployRefused, DeployResult
from nlu_mlflow.tracking import runs

# MLflow's webhook payloads are a few hundred bytes; anything larger is refused (413)
MAX_BODY_BYTES = 64 * 1024

logger = logging.getLogger("nlu_mlflow")

EVENT_ALIAS_CREATED = c.EVENT_ALIAS_CREATED
EVENT_VERSION_CREATED = c.EVENT_VERSION_CREATED
STATE_FILE = "deliveries.sqlite"
LOAD_TRIES = 3  # a failed load is tried this many times in all, then announced once
RETRY_BACKOFF_S = 10.0  # pause before the 2nd try; doubled before each further one
IDLE_WAKE_S = 5.0  # the worker looks at the log at least this often
DELIVERIES_SHOWN = 20


@dataclass(frozen=True)
class ReceiverSettings:
    model_name: str
    rasa: RasaServer
    work_dir: Path
    secret: str = field(repr=False)
    slack_url: str | None = field(default=None, repr=False)
    sync_interval_s: float | None = None
    load_tries: int = LOAD_TRIES
    retry_backoff_s: float = RETRY_BACKOFF_S

    @property
    def state_db(self) -> Path:
        return Path(self.work_dir) / STATE_FILE


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: dict


class Receiver:
    """Accepts verified deliveries (``handle``) and works through them in a thread (``start``/``stop``);
    ``create_app`` puts it behind HTTP."""

    def __init__(self, settings: ReceiverSettings, clock: Callable[[], float] = time.time):
        runs.bound_http_retries()  # MLflow's defaults retry a dead registry for minutes per call
        self.settings = settings
        self.deliveries = DeliveryLog(settings.state_db)
        self.deliveries.prune()
        self.clock = clock
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._last_sync_failure: str | None = None

    # --- the HTTP side: verify, store, answer ---

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        try:
            delivery = signature.verify(self.settings.secret, headers, body, self.clock())
            event, data = parse_event(body)
        except signature.SignatureError as exc:
            logger.warning("delivery refused (%s): %s", exc.status_code, exc)
            return Reply(exc.status_code, {"error": str(exc)})
        if self.is_production(event, data):
            return self._accept(delivery.delivery_id, event, data)
        return self._acknowledge(delivery.delivery_id, event, ignored(event, data))

    def _accept(self, delivery_id: str, event: str, data: dict) -> Reply:
        if not self.deliveries.add(delivery_id, event, data, STATUS_QUEUED, "waiting for the worker"):
            return self._duplicate(delivery_id, event)
        logger.info("delivery %s: production -> version %s; queued", delivery_id, data.get("version"))
        self._wake.set()
        return Reply(202, {"outcome": STATUS_QUEUED, "delivery_id": delivery_id})

    def _acknowledge(self, delivery_id: str, event: str, outcome: str) -> Reply:
        if not self.deliveries.add(delivery_id, event, {}, STATUS_DONE, outcome):
            return self._duplicate(delivery_id, event)
        logger.info("delivery %s (%s): %s", delivery_id, event, outcome)
        return Reply(200, {"outcome": outcome})

    def _duplicate(self, delivery_id: str, event: str) -> Reply:
        record = self.deliveries.get(delivery_id)
        status = record.status if record else "unknown"
        logger.info("delivery %s (%s) already received (%s); acknowledged again", delivery_id, event, status)
        return Reply(200, {"outcome": "duplicate", "status": status})

    def is_production(self, event: str, data: dict) -> bool:
        return (
            event == EVENT_ALIAS_CREATED
            and data.get("alias") == c.ALIAS_PRODUCTION
            and data.get("name") == self.settings.model_name
        )

    # --- the worker: one stored delivery at a time, in arrival order ---

    def start(self) -> None:
        """Start the worker; it first resumes what a previous receiver left queued or running."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="nlu-mlflow-deliveries", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the current step; a delivery interrupted in its retry pause stays pending (resumed)."""
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)

    @property
    def working(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _work(self) -> None:
        pending = self.deliveries.pending_count()
        if pending:
            logger.info("resuming %d delivery(ies) accepted but not finished", pending)
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                record = self.deliveries.next_pending()
                if record is not None:
                    self.process(record)
                    continue
            except Exception:  # the log itself failed (disk full?): keep the worker, try again later
                logger.exception("delivery worker: reading or writing %s failed", self.settings.state_db)
            self._wake.wait(IDLE_WAKE_S)

    def process(self, record: DeliveryRecord) -> DeliveryRecord | None:
        """Make Rasa serve production for ``record``, record the outcome (None: interrupted by ``stop``)."""
        try:
            result = self._deploy(record)
        except Exception as exc:  # anything unforeseen is recorded and posted; the next delivery still runs
            logger.exception("delivery %s: unexpected error", record.delivery_id)
            result = (STATUS_FAILED, f"unexpected error {type(exc).__name__}: {redact_text(str(exc))}")
            self.announce_failure(DeployError(result[1]))
        if result is None:
            return None
        status, outcome = result
        level = logging.INFO if status == STATUS_DONE else logging.ERROR
        logger.log(level, "delivery %s (%s) %s: %s", record.delivery_id, record.event, status, outcome)
        return self.deliveries.finish(record.delivery_id, status, outcome)

    def _deploy(self, record: DeliveryRecord) -> tuple[str, str] | None:
        tries = max(1, self.settings.load_tries)
        for attempt in range(1, tries + 1):
            self.deliveries.start_attempt(record.delivery_id)
            try:
                with self.lock:
                    result = deploy.sync(self.settings.model_name, *self._target())
            except DeployRefused as exc:
                self.announce_failure(exc)
                return STATUS_REFUSED, str(exc)
            except DeployError as exc:
                if not exc.retryable or attempt == tries:
                    self.announce_failure(exc)
                    return STATUS_FAILED, f"{exc} (try {attempt} of {tries})"
                pause = self.settings.retry_backoff_s * 2 ** (attempt - 1)
                logger.warning(
                    "delivery %s, try %d of %d: %s; next try in %.0f s",
                    record.delivery_id, attempt, tries, exc, pause,
                )  # fmt: skip
                if self._stopping.wait(pause):
                    return None
            else:
                return STATUS_DONE, self._went_live(result)
        raise AssertionError("unreachable: the last try returns")

    # --- the interval job and the messages ---

    def sync_once(self) -> DeployResult | None:
        """Converge Rasa on production now (the interval job); a repeated failure is posted once."""
        with self.lock:
            try:
                result = deploy.sync(self.settings.model_name, *self._target())
            except DeployError as exc:
                logger.error("sync: %s", exc)
                if str(exc) != self._last_sync_failure:
                    self.announce_failure(exc)
                self._last_sync_failure = str(exc)
                return None
            self._last_sync_failure = None
            logger.info("sync: %s", self._went_live(result))
            return result

    def _target(self) -> tuple[RasaServer, Path]:
        return self.settings.rasa, Path(self.settings.work_dir)

    def _went_live(self, result: DeployResult | None) -> str:
        if result is None:
            return f"{self.settings.model_name} has no production version"
        if not result.changed:
            return f"version {result.version.version} already live ({result.model_file})"
        self.announce(notify.went_live(result, self.settings.rasa.url))
        return f"version {result.version.version} live as {result.model_file} in {result.seconds:.1f} s"

    def announce_failure(self, error: DeployError) -> None:
        rasa = self.settings.rasa
        self.announce(notify.not_live(self.settings.model_name, error, rasa.url, serving(rasa)))

    def announce(self, payload: dict) -> None:
        notify.announce(self.settings.slack_url, payload)


def serving(rasa: RasaServer) -> str:
    """What ``rasa`` serves now, in words (for a failure message)."""
    try:
        return rasa.status().model_file or "no model"
    except RasaServerError:
        return "what it served before (unreachable now)"


def parse_event(body: bytes) -> tuple[str, dict]:
    """``("entity.action", data)`` of an MLflow webhook body."""
    try:
        document = json.loads(body)
        event, data = f"{document['entity']}.{document['action']}", document.get("data") or {}
    except (ValueError, KeyError, TypeError):
        raise signature.MalformedDelivery(
            "body is not an MLflow webhook payload (entity, action, data)"
        ) from None
    if not isinstance(data, dict):
        raise signature.MalformedDelivery("body's 'data' is not an object")
    return event, data


def ignored(event: str, data: dict) -> str:
    what = f"{data.get('name')} version {data.get('version')}"
    if event == EVENT_VERSION_CREATED:
        return f"registered {what}: acknowledged, loaded only once it is production"
    if event == EVENT_ALIAS_CREATED:
        return f"alias '{data.get('alias')}' on {what}: not production of this model, ignored"
    return f"{event}: not handled, ignored"


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` once it is known to exceed ``limit`` bytes: a declared Content-Length over
    the limit is refused before anything is read, and a chunked body is read only up to the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ReceiverSettings, receiver: Receiver | None = None) -> FastAPI:
    """``POST /webhook`` (MLflow deliveries), ``GET /health`` and ``GET /deliveries`` (the latest
    deliveries and their outcome); the worker runs while the app does. With ``sync_interval_s``, a
    background job converges Rasa on production at start and then every interval."""
    receiver = receiver or Receiver(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        receiver.start()
        task = asyncio.create_task(_sync_every(receiver, settings.sync_interval_s))
        yield
        task.cancel()
        await run_in_threadpool(receiver.stop)

    app = FastAPI(title="nlu-mlflow webhook receiver", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.receiver = receiver

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await read_bounded(request, MAX_BODY_BYTES)  # the raw bytes: the signature covers them
        if body is None:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        reply = await run_in_threadpool(receiver.handle, request.headers, body)
        return JSONResponse(reply.body, status_code=reply.status_code)

    @app.get("/health")
    async def health() -> JSONResponse:
        pending = await run_in_threadpool(receiver.deliveries.pending_count)
        if not receiver.working:
            return JSONResponse({"status": "worker stopped", "pending": pending}, status_code=503)
        return JSONResponse({"status": "ok", "pending": pending})

    @app.get("/deliveries")
    async def deliveries(limit: int = Query(DELIVERIES_SHOWN, ge=1, le=200)) -> dict:
        records = await run_in_threadpool(receiver.deliveries.recent, limit)
        return {"deliveries": [record.summary() for record in records]}

    return app


async def _sync_every(receiver: Receiver, interval_s: float | None) -> None:
    while interval_s:
        try:
            await run_in_threadpool(receiver.sync_once)
        except Exception:  # the job must outlive a registry outage
            logger.exception("sync job failed; trying again in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
