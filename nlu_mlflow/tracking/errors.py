"""MLflow's exceptions become the project's own here, at the edge of the tracking layer.

Every public function of ``tracking`` runs inside ``translated``: an ``MlflowException`` (a refused
request, a server that is down after MLflow's retries, a bad argument) leaves this layer as a
``TrackingError`` whose message names the server without credentials, so no layer above needs to know
MLflow's exception types.
"""

from __future__ import annotations

import contextlib
import urllib.parse

import mlflow
from mlflow.exceptions import MlflowException


class TrackingError(RuntimeError):
    """An MLflow call failed; the message is safe to show (no credentials)."""

    def __init__(self, message: str, error_code: str | None = None):
        super().__init__(message)
        self.error_code = error_code


def redacted_uri(uri: str) -> str:
    """``uri`` with the password of its user part replaced by ``***``."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def detail(error: Exception) -> str:
    """MLflow's message of ``error`` on one line, at most 500 characters."""
    return " ".join(str(getattr(error, "message", error)).split())[:500]


def server_failure(error: MlflowException) -> TrackingError:
    message = f"MLflow tracking server {redacted_uri(mlflow.get_tracking_uri())} failed: {detail(error)}"
    return TrackingError(message, error.error_code)


class translated(contextlib.ContextDecorator):  # noqa: N801 (used as a decorator, reads as one)
    """Decorator and context manager: ``MlflowException`` inside becomes ``TrackingError``."""

    def __enter__(self) -> translated:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, MlflowException):
            raise server_failure(exc) from None
        return False
