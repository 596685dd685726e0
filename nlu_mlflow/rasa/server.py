"""A small client for a running Rasa server's HTTP API (``rasa run --enable-api --auth-token ...``).

Rasa 3.6 reads its auth token from the ``?token=`` query parameter, so URLs with the query are
never logged or put into exceptions here: errors name ``self.url`` and the path only.
Rasa answers ``/status`` with ``model_file`` (the loaded archive's file name) and ``model_id``
(the id Rasa wrote into the archive's ``metadata.json`` at training time). Whether the loaded model is a
full assistant is asked with ``POST /model/predict`` on an empty conversation (nothing is stored): Rasa 3.6
answers ``null`` for an NLU-only model and the next action's scores for a model with dialogue policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import requests

TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 300.0  # loading a DIET model traces TensorFlow graphs: tens of seconds


class RasaServerError(RuntimeError):
    """The Rasa server refused a request or could not be reached (the message never holds the token)."""


class RasaUnreachable(RasaServerError):
    """No answer (connection refused, timeout): the server may still be starting."""


@dataclass(frozen=True)
class RasaStatus:
    model_file: str | None
    model_id: str | None


@dataclass(frozen=True)
class RasaServer:
    url: str
    token: str | None = field(default=None, repr=False)
    allow_open_api: bool = False

    def status(self) -> RasaStatus:
        """What the server runs now (``model_file`` None when it runs no model)."""
        response = self._request("GET", "/status")
        if response.status_code == HTTPStatus.CONFLICT:  # Rasa's answer when no model is loaded
            return RasaStatus(None, None)
        self._raise_for(response, "/status")
        body = response.json()
        return RasaStatus(body.get("model_file"), body.get("model_id"))

    def load_model(self, archive: Path) -> None:
        """``PUT /model``: Rasa swaps models only when the new one loads; the old one serves otherwise."""
        self.ensure_protected()
        body = {"model_file": str(Path(archive).resolve())}
        response = self._request("PUT", "/model", json=body, timeout=LOAD_TIMEOUT_S)
        self._raise_for(response, "/model")

    def has_dialogue(self) -> bool:
        """True when the loaded model predicts actions (a full assistant), False for an NLU-only model."""
        response = self._request("POST", "/model/predict", json=[])
        self._raise_for(response, "/model/predict")
        try:
            return response.json() is not None
        except ValueError:
            raise RasaServerError(f"Rasa server {self.url}/model/predict answered no JSON") from None

    def is_open(self) -> bool:
        """True when the server answers ``/status`` without a token (its API is unauthenticated)."""
        response = self._request("GET", "/status", with_token=False)
        return response.status_code not in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)

    def ensure_protected(self) -> None:
        """Refuse to drive a server whose API anyone on its network can use, unless allowed."""
        if not self.allow_open_api and (not self.token or self.is_open()):
            raise RasaServerError(
                f"Rasa server {self.url} has an open API (no --auth-token): restart it with "
                "`rasa run --enable-api --auth-token $RASA_AUTH_TOKEN` or pass --allow-open-api."
            )

    def _request(self, method: str, path: str, with_token: bool = True, timeout: float = TIMEOUT_S, **kw):
        params = {"token": self.token} if with_token and self.token else None
        try:
            return requests.request(method, self.url + path, params=params, timeout=timeout, **kw)
        except requests.RequestException as exc:
            raise RasaUnreachable(
                f"Rasa server {self.url}{path} unreachable ({type(exc).__name__})"
            ) from None

    def _raise_for(self, response: requests.Response, path: str) -> None:
        if response.status_code < 400:
            return
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            raise RasaServerError(f"Rasa server {self.url}{path} refused the token; check $RASA_AUTH_TOKEN")
        raise RasaServerError(
            f"Rasa server {self.url}{path} answered {response.status_code}: {_message(response)}"
        )


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:500]
    except ValueError:
        return response.text[:500]
