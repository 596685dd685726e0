"""The webhook receiver: verify an MLflow delivery, handle it once, make Rasa serve production, tell the team.

Events (MLflow 3.5 has no stage event; the ``production`` alias is the source of truth):

- ``model_version_alias.created`` with alias ``production`` on the configured model: Rasa is made
  to serve the alias holder read from the registry at that moment (normally the event's version;
  a late or out-of-order event thus never rolls Rasa back), then one message is posted.
  If loading fails, Rasa keeps its old model, the failure is posted once per delivery and the
  answer is 502, so MLflow retries (3 retries with the same delivery id, then it drops the event;
  ``nlu-mlflow sync-rasa`` or ``serve --sync-interval`` heal what was dropped).
- ``model_version.created``: acknowledged and recorded, not announced. Every workflow run registers
  its best candidate, kept or not; the team hears about the versions that go live.
- anything else (other aliases, other models, MLflow's test ping): acknowledged, nothing done.

Deliveries are handled one at a time (a lock), so two deliveries never race on ``PUT /model``.
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

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nlu_mlflow import constants as c
from nlu_mlflow.rasa.server import RasaServer, RasaServerError
from nlu_mlflow.receiver import deploy, notify, signature
from nlu_mlflow.receiver.deliveries import STATUS_DONE, STATUS_FAILED, DeliveryLog
from nlu_mlflow.receiver.deploy import DeployError, DeployResult

# MLflow's webhook payloads are a few hundred bytes; anything larger is refused (413)
MAX_BODY_BYTES = 64 * 1024

logger = logging.getLogger("nlu_mlflow")

EVENT_ALIAS_CREATED = c.EVENT_ALIAS_CREATED
EVENT_VERSION_CREATED = c.EVENT_VERSION_CREATED
STATUS_LOAD_FAILED = 502  # a 5xx: MLflow retries 500, 502, 503 and 504
STATE_FILE = "deliveries.sqlite"


@dataclass(frozen=True)
class ReceiverSettings:
    model_name: str
    rasa: RasaServer
    work_dir: Path
    secret: str = field(repr=False)
    slack_url: str | None = field(default=None, repr=False)
    sync_interval_s: float | None = None

    @property
    def state_db(self) -> Path:
        return Path(self.work_dir) / STATE_FILE


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: dict


class Receiver:
    """Handles verified deliveries one at a time; ``create_app`` puts it behind HTTP."""

    def __init__(self, settings: ReceiverSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.deliveries = DeliveryLog(settings.state_db)
        self.deliveries.prune()
        self.clock = clock
        self.lock = threading.Lock()
        self._last_sync_failure: str | None = None

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        try:
            delivery = signature.verify(self.settings.secret, headers, body, self.clock())
            event, data = parse_event(body)
        except signature.SignatureError as exc:
            logger.warning("delivery refused (%s): %s", exc.status_code, exc)
            return Reply(exc.status_code, {"error": str(exc)})
        with self.lock:
            if self.deliveries.is_done(delivery.delivery_id):
                logger.info(
                    "delivery %s (%s) already handled; acknowledged again", delivery.delivery_id, event
                )
                return Reply(200, {"outcome": "duplicate"})
            return self._dispatch(delivery.delivery_id, event, data)

    def _dispatch(self, delivery_id: str, event: str, data: dict) -> Reply:
        if self.is_production(event, data):
            logger.info("delivery %s: production -> version %s", delivery_id, data.get("version"))
            try:
                outcome = self._went_live(deploy.sync(self.settings.model_name, *self._target()))
            except DeployError as exc:
                return self._failed(delivery_id, event, exc)
        else:
            outcome = ignored(event, data)
        logger.info("delivery %s (%s): %s", delivery_id, event, outcome)
        self.deliveries.record(delivery_id, event, STATUS_DONE, outcome)
        return Reply(200, {"outcome": outcome})

    def _failed(self, delivery_id: str, event: str, error: DeployError) -> Reply:
        """Not done: MLflow retries the 5xx; the failure is announced on the first attempt only."""
        record = self.deliveries.record(delivery_id, event, STATUS_FAILED, str(error))
        logger.error("delivery %s, attempt %d: %s", delivery_id, record.attempts, error)
        if record.attempts == 1:
            self.announce_failure(error)
        return Reply(STATUS_LOAD_FAILED, {"error": str(error)})

    def is_production(self, event: str, data: dict) -> bool:
        return (
            event == EVENT_ALIAS_CREATED
            and data.get("alias") == c.ALIAS_PRODUCTION
            and data.get("name") == self.settings.model_name
        )

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
    """``POST /webhook`` (MLflow deliveries) and ``GET /health``; with ``sync_interval_s``, a
    background job converges Rasa on production at start and then every interval."""
    receiver = receiver or Receiver(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(_sync_every(receiver, settings.sync_interval_s))
        yield
        task.cancel()

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
    async def health() -> dict:
        return {"status": "ok"}

    return app


async def _sync_every(receiver: Receiver, interval_s: float | None) -> None:
    while interval_s:
        try:
            await run_in_threadpool(receiver.sync_once)
        except Exception:  # the job must outlive a registry outage
            logger.exception("sync job failed; trying again in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
