"""Log set-up for the command-line entry points: progress on stderr, libraries kept quiet."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from nlu_mlflow.decide.redact import redact_text
from nlu_mlflow.rasa import runtime


def setup(verbose: bool, log_file: Path | None = None) -> None:
    """``nlu_mlflow`` at INFO (DEBUG with ``verbose``) on stderr, optionally also appended to ``log_file``.

    Without ``verbose`` the libraries' warnings (pkg_resources, SQLAlchemy, pyparsing deprecations that
    Rasa and TensorFlow trigger at import: ``runtime.LIBRARY_MODULES``) and MLflow's artifact progress bars
    stay out of the output; what they print on their own is dropped by ``console.library_output``. This
    package's own warnings always show.
    """
    logging.captureWarnings(True)  # warnings become log records on stderr (and in the log file)
    if not verbose:
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        runtime.ignore_library_warnings()
        warnings_log = logging.getLogger("py.warnings")
        if not any(isinstance(f, LibraryWarnings) for f in warnings_log.filters):
            warnings_log.addFilter(LibraryWarnings())
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("nlu_mlflow").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its DEBUG lines hold URLs with ?token=
    for noisy in ("mlflow", "alembic"):  # store migrations and artifact downloads on every call
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
    for handler in logging.getLogger().handlers:  # every line written, ours and the libraries'
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class LibraryWarnings(logging.Filter):
    """Warnings raised inside installed libraries or Python's import machinery (a deprecation one library hits
    in another at import time, before any filter could be set) stay out of the normal output; this package's
    own warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if f"{os.sep}nlu_mlflow{os.sep}" in message:
            return True
        return f"{os.sep}site-packages{os.sep}" not in message and not message.startswith("<frozen ")


class RedactingFilter(logging.Filter):
    """Passwords and query strings of URLs never reach a log line (``decide.redact``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def echo(text: object = "", err: bool = False) -> None:
    """``typer.echo`` with every URL redacted: what the commands print to stdout and stderr."""
    typer.echo(redact_text(str(text)), err=err)
