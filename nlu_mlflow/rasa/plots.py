"""Rasa's evaluation plots, drawn in a helper process while the workflow goes on.

Rasa draws a candidate's confusion matrices and confidence histograms inside ``evaluate_intents`` /
``evaluate_entities``; on rasa-demo-flat (67 intents: a label in each of 4,489 cells of a 20-inch
figure) that was about half of what the workflow added to training. Training keeps one of the two
cores busy, but a thread cannot use the other: drawing holds the GIL, and in a measured run training
slowed down by more than the drawing saved. So, inside ``capture``, Rasa's two drawing functions
(``rasa.utils.plotting.plot_confusion_matrix`` and ``plot_paired_histogram``) are not run in this
process: each call, with the arguments Rasa computed, goes to one helper process (``plot_worker``,
about 60 MB: Rasa's plotting module and matplotlib, no TensorFlow) that draws it while the next
pipeline trains. ``finish`` waits for the drawings and hands each PNG to the ``log`` callable it was
given (the workflow passes ``tracking.runs.log_artifact_to``), with the run it belongs to.

A drawing that fails is a warning and a tag on its run, never a failed workflow; if the helper cannot
start, Rasa draws in this process as before.
"""

from __future__ import annotations

import inspect
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.rasa.plot_worker import DRAWING_FUNCTIONS

logger = logging.getLogger("nlu_mlflow")

LogArtifact = Callable[[str, Path, str], None]  # (run id, file, artifact folder)
TagRun = Callable[[str, dict[str, str]], None]  # (run id, tags)


@dataclass(frozen=True)
class Drawing:
    run_id: str
    artifact_path: str
    png: Path


class PlotHelper:
    """``with PlotHelper(log, tag) as plots:`` … ``with plots.capture(run_id, "reports"): <Rasa's reports>``.

    ``log(run_id, png, artifact_path)`` stores a finished drawing; ``tag(run_id, tags)`` records a failed one.
    """

    def __init__(self, log: LogArtifact, tag: TagRun) -> None:
        self._log, self._tag = log, tag
        self._dir = Path(tempfile.mkdtemp(prefix="nlu-mlflow-plots-"))
        self._drawings: list[Drawing] = []
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> PlotHelper:
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "nlu_mlflow.rasa.plot_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # failures come back as replies
                text=True,
                env={**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"},
            )
        except OSError as error:
            logger.warning("plot helper did not start (%s): plots are drawn in this process", error)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self.finish()
            elif self._process is not None:
                self._process.kill()
                self._process.wait()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    @contextmanager
    def capture(self, run_id: str, artifact_path: str) -> Iterator[None]:
        """Within the block, Rasa's drawing calls go to the helper; their PNGs are logged to ``run_id``
        under ``artifact_path`` by ``finish``."""
        import rasa.utils.plotting as plotting

        from nlu_mlflow.rasa import internals

        if not internals.verified():  # another Rasa: it draws in this process, as it always does
            yield
            return
        originals = {name: getattr(plotting, name) for name in DRAWING_FUNCTIONS}
        for name, function in originals.items():
            setattr(plotting, name, self._sender(name, function, run_id, artifact_path))
        try:
            yield
        finally:
            for name, function in originals.items():
                setattr(plotting, name, function)

    def _sender(self, name: str, function, run_id: str, artifact_path: str):
        signature = inspect.signature(function)

        def send(*args, **kwargs) -> None:
            bound = signature.bind(*args, **kwargs)
            target = bound.arguments.get("output_file")
            if self._process is None or self._process.poll() is not None or not target:
                return function(*args, **kwargs)
            png = self._dir / f"{len(self._drawings)}" / Path(target).name
            png.parent.mkdir()
            bound.arguments["output_file"] = str(png)
            job = png.parent / "job.pickle"
            job.write_bytes(pickle.dumps((name, bound.args, bound.kwargs)))
            self._process.stdin.write(f"{job}\n")
            self._process.stdin.flush()
            self._drawings.append(Drawing(run_id, artifact_path, png))
            return None

        return send

    def finish(self) -> list[str]:
        """Wait for every drawing and log it; returns the run ids with a drawing that failed."""
        failed: list[str] = []
        if self._process is not None:
            self._process.stdin.close()
            for drawing in self._drawings:
                reply = self._process.stdout.readline().strip() or "error the plot helper stopped"
                if reply == "ok":
                    self._log(drawing.run_id, drawing.png, drawing.artifact_path)
                else:
                    failed.append(drawing.run_id)
                    self._report_failure(drawing, reply.removeprefix("error "))
            self._process.wait()
            self._process = None
        self._drawings.clear()
        return failed

    def _report_failure(self, drawing: Drawing, why: str) -> None:
        message = f"{drawing.png.name} was not drawn: {why}"[: c.MAX_TAG_LENGTH]
        logger.warning("run %s: %s", drawing.run_id, message)
        try:
            self._tag(drawing.run_id, {c.TAG_PLOTS_ERROR: message})
        except Exception:  # the tracking server may be what failed; the warning above is on record
            logger.warning("could not tag run %s with the plot error", drawing.run_id)
