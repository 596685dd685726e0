"""Training curves: the per-epoch figures Rasa computes (loss, accuracies) as MLflow step metrics of a run.

A ``CurveLogger`` listens to the training hook (``rasa.train_hook``): each epoch's figures go into a queue a
background thread sends in batches (``MlflowClient.log_batch``), so the MLflow UI draws the loss and accuracy
against the epoch while the model trains. The training never waits on the tracking server: ``on_epoch`` only
queues. A batch the server refuses or does not answer stays queued and is sent with the next; ``close`` gives
the thread ``CLOSE_TIMEOUT_S`` to send the rest, and what is still unsent then is said in one warning with the
last epoch's loss. Metric names: ``curve/<component>/<Rasa's name>`` (``curve/DIETClassifier/t_loss``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from mlflow import MlflowClient
from mlflow.entities import Metric

from nlu_mlflow import constants as c
from nlu_mlflow.rasa.train_hook import EpochEnd, Listener, TrainingContext

logger = logging.getLogger("nlu_mlflow")

BATCH = 500  # metrics per log_batch call (MLflow accepts up to 1000)
SEND_EVERY_S = 2.0  # the thread gathers what arrives this long before sending
CLOSE_TIMEOUT_S = 15.0  # how long ``close`` waits for the last batches
_DONE = object()


def metric_name(component: str, name: str) -> str:
    return f"{c.CURVE_PREFIX}/{component}/{name}"


class CurveLogger(Listener):
    """Logs each epoch's figures on run ``run_id`` from a background thread; ``close`` when training ends."""

    def __init__(self, run_id: str, client: MlflowClient | None = None) -> None:
        self.run_id = run_id
        self.client = client or MlflowClient()
        self.queue: queue.Queue = queue.Queue()
        self.unsent: list[Metric] = []
        self.sent = 0
        self.error: str | None = None
        self.last: EpochEnd | None = None
        self.thread = threading.Thread(target=self._send_loop, name="nlu-mlflow-curves", daemon=True)
        self.thread.start()

    def on_epoch(self, event: EpochEnd, context: TrainingContext) -> None:  # noqa: ARG002
        self.last = event
        stamp = int(time.time() * 1000)
        for name, value in event.logs.items():
            self.queue.put(Metric(metric_name(event.component, name), value, stamp, event.epoch))

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is left (waiting at most ``timeout`` seconds); say so if some figures stay unsent."""
        self.queue.put(_DONE)
        self.thread.join(timeout)
        if self.thread.is_alive() or self.unsent:
            why = self.error or f"no answer within {timeout:.0f} s"
            logger.warning(
                "  training curves of run %s: %d figure(s) not logged (tracking server: %s)%s",
                self.run_id,
                len(self.unsent),
                why,
                f"; last epoch: {_summary(self.last)}" if self.last else "",
            )

    def _send_loop(self) -> None:
        done = False
        while not done:
            done = self._gather(time.monotonic() + SEND_EVERY_S)
            self._send()

    def _gather(self, until: float) -> bool:
        """Move what arrives until ``until`` into ``unsent``; True once ``close`` was called."""
        while (wait := until - time.monotonic()) > 0:
            try:
                item = self.queue.get(timeout=wait)
            except queue.Empty:
                return False
            if item is _DONE:
                return True
            self.unsent.append(item)
        return False

    def _send(self) -> None:
        while self.unsent:
            batch = self.unsent[:BATCH]
            try:
                self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
            except Exception as error:  # the server is down or slow: keep the figures, try with the next
                self.error = f"{type(error).__name__}: {str(error)[:200]}"
                return
            del self.unsent[: len(batch)]
            self.sent += len(batch)
            self.error = None


def _summary(event: EpochEnd) -> str:
    figures = ", ".join(f"{k} {v:.4f}" for k, v in event.logs.items())
    return f"{event.component} epoch {event.epoch}/{event.epochs}: {figures}"
