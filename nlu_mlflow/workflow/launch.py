"""One ``nlu-mlflow run`` from start to end: under the lock, the settings built from the workflow file and the
options, the workflow run, and around it what cron and the team read: the summary file (``"running"``
first, ``"failed"`` with the error on every path that stops, the decision when it finishes) and a one-line
chat message. It returns the result or raises ``RunStopped``, whose ``cause`` is the project's error the
command line turns into an exit status; an unexpected error is recorded and told, then raised as it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu_mlflow import constants as c
from nlu_mlflow.decide import summary
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow import inbox, lock, record, settings
from nlu_mlflow.workflow.champion import ChampionUnusable
from nlu_mlflow.workflow.remote import RemoteDataError
from nlu_mlflow.workflow.run import WorkflowResult, run
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

STOPPED = "the workflow stopped and promoted nothing after that point (its runs may still show RUNNING)"
KEPT = "the runs and their artifacts are kept in the tracking store"
# the errors a run stops on with one sentence (anything else is a bug: recorded, told, raised as it is)
KNOWN = (lock.LockedError, InputError, ChampionUnusable, RemoteDataError, TrackingError)


@dataclass(frozen=True)
class Request:
    given: dict[str, Any]  # settings given on the command line by option name (None: not given)
    workflow_file: Path | None = None
    lock_file: Path = Path(lock.DEFAULT_LOCK_FILE)
    tell: Callable[[str], None] | None = None  # posts one line to the team's chat (no URL: None)


class RunStopped(Exception):
    """The run stopped before it finished: ``str()`` is what the user reads (one sentence a line), ``cause``
    the project's error behind it, whose type decides the exit status."""

    def __init__(self, message: str, cause: BaseException):
        super().__init__(message)
        self.cause = cause


def launch(request: Request) -> tuple[WorkflowResult, WorkflowSettings]:
    """Run the workflow as ``request`` says; the summary file and the chat hear how it ended."""
    path = settings.summary_path(request.given, request.workflow_file)
    started = summary.now_iso()
    try:
        with lock.exclusive(request.lock_file):
            _write(
                path, {"decision": "running", "message": "the run has not finished", "decided_at": started}
            )
            built = settings.build(request.given, request.workflow_file)
            result = run(built)
    except lock.LockedError as error:  # the running run's file is left alone
        raise RunStopped(str(error), error) from None
    except KNOWN as error:
        message = sentence(error)
        first = error.problems[0] if isinstance(error, InputError) else message
        _stopped(request, path, started, message, f"nlu-mlflow run FAILED: {first}")
        raise RunStopped(message, error) from None
    except BaseException as error:
        told = f"nlu-mlflow run FAILED: {type(error).__name__}; see the log"
        _stopped(request, path, started, f"{type(error).__name__}: {error}", told)
        raise
    failed = "; ".join(f"{x.name} FAILED ({x.reason})" for x in result.failed)
    waiting = inbox.nightly_counts(None, built.tracking_uri)  # what waits for a person (counts, no text)
    _tell(
        request,
        f"nlu-mlflow run {result.run_id}: {result.outcome.message}"
        + (f"; {failed}" if failed else "")
        + (f"\n{waiting.line()}" if waiting else ""),
    )
    return result, built


def sentence(error: BaseException) -> str:
    """What the user reads about a known error: its own sentence, and what it left behind."""
    if isinstance(error, RegistryError):
        return f"{error}; {KEPT}"
    if isinstance(error, TrackingError) and not isinstance(error, AccessError):
        return f"{error}; {STOPPED}"
    return str(error)


def _stopped(request: Request, path: Path | None, started: str, error: str, told: str) -> None:
    _tell(request, told)
    if path is not None and not _recorded_since(path, started):
        model = settings.model_name_hint(request.given, request.workflow_file)
        _write(path, summary.failure(None, None, model, error))


def _recorded_since(path: Path, started: str) -> bool:
    """The workflow already wrote its own failure (with the parent run's id) in this run."""
    with contextlib.suppress(OSError, ValueError):
        written = json.loads(path.read_text(encoding="utf-8"))
        return written.get("decision") == c.DECISION_FAILED and written.get("decided_at", "") >= started
    return False


def _write(path: Path | None, data: dict) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            record.write_summary(path, data)


def _tell(request: Request, text: str) -> None:
    if request.tell is not None:
        request.tell(text)
