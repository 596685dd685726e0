"""The progress of a training: epoch i/N, the loss and the time left, from the training hook (``train_hook``).

On a terminal it is one line rewritten in place (``\\r``) on the stream the run logs to; anywhere else (a log
file, CI) a log line every 10% of the epochs, and at the last one. Rasa's own epoch bar stays off in a normal
run (``console.library_output``), so this is what a user sees between "training" and "trained".
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from nlu_mlflow.rasa.train_hook import EpochEnd, Listener, TrainingContext

logger = logging.getLogger("nlu_mlflow")

LOG_EVERY = 0.1  # share of the epochs between two log lines when the output is not a terminal
# Rasa's names: total loss, intent accuracy, entity F1, response and action accuracy
SHOWN = ("t_loss", "i_acc", "e_f1", "r_acc", "a_acc")


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def line(label: str, event: EpochEnd) -> str:
    """``diet: DIETClassifier epoch 3/100  t_loss 1.234  i_acc 0.812  ETA 4:05``"""
    figures = "  ".join(f"{k} {event.logs[k]:.3f}" for k in SHOWN if k in event.logs)
    eta = f"ETA {duration(event.eta_seconds)}" if event.epoch < event.epochs else "done"
    head = f"{label}: " if label else ""
    return f"{head}{event.component} epoch {event.epoch}/{event.epochs}  {figures}  {eta}"


class Progress(Listener):
    """Shows each epoch of a training on ``stream`` (default: stderr as it is when created, i.e. before
    ``library_output`` swaps it) when that is a terminal, else logs every ``LOG_EVERY`` of the epochs."""

    def __init__(self, label: str = "", stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = 0

    def on_epoch(self, event: EpochEnd, context: TrainingContext) -> None:  # noqa: ARG002
        text = line(self.label, event)
        if self.terminal:
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
        elif _tenth(event.epoch, event.epochs) > _tenth(event.epoch - 1, event.epochs) or (
            event.epoch == event.epochs
        ):
            logger.info("  %s", text)

    def on_end(self, component: str) -> None:  # noqa: ARG002
        if self.terminal and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _tenth(epoch: int, epochs: int) -> int:
    """Which tenth of the training ``epoch`` completes."""
    return int(epoch * round(1 / LOG_EVERY) // max(epochs, 1))
