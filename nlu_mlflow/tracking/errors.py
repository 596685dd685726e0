"""MLflow's exceptions become the project's own here, at the edge of the tracking layer.

Every public function of ``tracking`` runs inside ``translated``: an ``MlflowException`` (a refused
request, a server that is down after MLflow's retries, a bad argument) or a failed HTTP request that MLflow
lets through as ``requests``' own error (an artifact upload the server answered with a 5xx) leaves this
layer as a ``TrackingError`` whose message names the server without credentials, so no layer above needs to
know MLflow's exception types, and a workflow tells a store that failed from a candidate that failed.

A basic-auth server's refusals (401: no or wrong credentials; 403: a missing permission) become an
``AccessError`` whose one sentence names the user, what was refused, the permission it needs and the fix.
The server's 403 says only "Permission denied"; the permission comes from what the call was doing
(``Needs``, given by the caller) or else from the refused endpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from dataclasses import dataclass

import mlflow
import requests
from mlflow.exceptions import MlflowException, get_error_code
from mlflow.protos.databricks_pb2 import ErrorCode

from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError

USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
DOCS = "docs/shared-server.md"
ADMIN = "an MLflow admin account"
# the error codes MLflow gives a refused request (mlflow/exceptions.py maps 401 and 403 to them)
_REFUSED_CODES = {"UNAUTHENTICATED": 401, "CUSTOMER_UNAUTHORIZED": 401, "PERMISSION_DENIED": 403}
# MLflow 3.5.1's message for a refused request with a plain-text body: "API request to endpoint E failed with
# error code N != 200. Response body: 'B'" (mlflow/utils/rest_utils.py); artifact uploads raise requests'
# HTTPError instead
_REFUSED = re.compile(
    r"endpoint (?P<endpoint>\S+) failed with error code (?P<status>\d+).*?body: '(?P<body>.*)'", re.S
)
# what a refused endpoint needs, when the caller did not say (first match wins)
_ENDPOINT_NEEDS = (
    ("/webhooks", "manage webhooks", ADMIN),
    ("/mlflow-artifacts/", "write run artifacts", "EDIT permission on the run's experiment"),
    ("/runs/", "write runs", "EDIT permission on the experiment (--experiment)"),
    ("/logged-models", "log models", "EDIT permission on the experiment (--experiment)"),
    ("/registered-models/", "change the registered model", "EDIT permission on the registered model"),
    ("/model-versions/", "change the model version", "EDIT permission on its registered model"),
    ("/experiments/", "change the experiment", "EDIT permission on the experiment"),
)


class TrackingError(RuntimeError):
    """An MLflow call failed; the message is safe to show (no credentials)."""

    def __init__(self, message: str, error_code: str | None = None):
        super().__init__(message)
        self.error_code = error_code


class AccessError(TrackingError):
    """The tracking server refused the login (401) or the permission (403); nothing was done by the call."""


@dataclass(frozen=True)
class Needs:
    """What a call needs on a basic-auth server: ``action`` ("set alias 'production' of registered model
    'rasa-nlu'") and ``permission`` ("EDIT permission on registered model 'rasa-nlu'", or ``ADMIN``)."""

    action: str
    permission: str

    @classmethod
    def on_model(cls, action: str, name: str, permission: str = "EDIT") -> Needs:
        model = f"registered model '{name}'"
        return cls(f"{action} of {model}", f"{permission} permission on {model}")


def checked_uri(uri: str) -> str:
    """``uri`` if it carries no password: credentials come from the environment only, so that they never
    reach a log line, a run's tags or the decision record, which all name the tracking URI."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    bare = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    if parts.scheme in ("http", "https"):
        fix = f"give {bare} and set {USERNAME_ENV} and {PASSWORD_ENV}"
    else:
        fix = "leave the password to the database driver's environment (PGPASSWORD for PostgreSQL)"
    raise InputError(
        f"tracking URI {redact_url(uri)}: put no password in the URL (it is logged and recorded); {fix}."
    )


def detail(error: Exception) -> str:
    """MLflow's message of ``error`` on one line, at most 500 characters."""
    return " ".join(str(getattr(error, "message", error)).split())[:500]


def server_failure(error: Exception) -> TrackingError:
    """Any other failure of an MLflow call or of its HTTP request (a 5xx, a refused connection, a timeout)."""
    message = f"MLflow tracking server {redact_url(mlflow.get_tracking_uri())} failed: {detail(error)}"
    if isinstance(error, MlflowException):
        return TrackingError(message, error.error_code)
    response = error.response if isinstance(error, requests.HTTPError) else None
    status = response.status_code if response is not None else None  # a Response of a 5xx is falsy
    return TrackingError(message, ErrorCode.Name(get_error_code(status)) if status else None)


def _refused(error: Exception) -> tuple[int, str, str] | None:
    """(status, endpoint, body) of a request the server refused with 401 or 403, else None.

    MLflow's error code says whether it was refused; its message is read only for the wording (endpoint,
    body), and only once the code said so.
    """
    if isinstance(error, requests.HTTPError) and error.response is not None:
        response = error.response
        status, endpoint, body = response.status_code, urllib.parse.urlsplit(response.url).path, response.text
    elif isinstance(error, MlflowException) and error.error_code in _REFUSED_CODES:
        status, found = _REFUSED_CODES[error.error_code], _REFUSED.search(error.message)
        endpoint, body = (found["endpoint"], found["body"]) if found else ("", error.message)
    else:
        return None
    return (status, endpoint, body.strip()) if status in (401, 403) else None


def access_error(error: Exception, needs: Needs | None = None) -> AccessError | None:
    """The sentence a refused request becomes (None for any other error)."""
    refused = _refused(error)
    if refused is None:
        return None
    status, endpoint, body = refused
    server, user = redact_url(mlflow.get_tracking_uri()), os.environ.get(USERNAME_ENV)
    if status == 401 and not user:
        return AccessError(
            f"MLflow tracking server {server} requires a login: set {USERNAME_ENV} and {PASSWORD_ENV}.",
            "UNAUTHENTICATED",
        )
    if status == 401:
        return AccessError(
            f"MLflow tracking server {server} did not accept user '{user}' with the password in "
            f"{PASSWORD_ENV}: check both (an admin can reset it, {DOCS}).",
            "UNAUTHENTICATED",
        )
    if "Invalid Host header" in body:
        host = urllib.parse.urlsplit(mlflow.get_tracking_uri()).netloc
        return AccessError(
            f"MLflow tracking server {server} refused the host name '{host}': add it to the server's "
            "--allowed-hosts.",
            "PERMISSION_DENIED",
        )
    needs = needs or _needs_of(endpoint)
    fix = (
        f"run it with an admin's {USERNAME_ENV} and {PASSWORD_ENV}"
        if needs.permission == ADMIN
        else f"ask an MLflow admin to grant it ({DOCS})"
    )
    return AccessError(
        f"MLflow user '{user}' may not {needs.action} on {server}: that needs {needs.permission}; {fix}.",
        "PERMISSION_DENIED",
    )


def _needs_of(endpoint: str) -> Needs:
    for part, action, permission in _ENDPOINT_NEEDS:
        if part in endpoint:
            return Needs(action, permission)
    return Needs(f"call {endpoint}", "a permission this user lacks")


class translated(contextlib.ContextDecorator):
    """Decorator and context manager: an ``MlflowException`` or a failed HTTP request (``requests``' errors,
    which MLflow's artifact uploads and downloads raise as they are) inside becomes ``TrackingError`` (a
    refused login or permission: ``AccessError``, worded with ``needs`` when given)."""

    def __init__(self, needs: Needs | None = None):
        self.needs = needs

    def __enter__(self) -> translated:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        refused = access_error(exc, self.needs) if isinstance(exc, Exception) else None
        if refused is not None:
            raise refused from None
        if isinstance(exc, MlflowException | requests.RequestException):
            raise server_failure(exc) from None
        return False
