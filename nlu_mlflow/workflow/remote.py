"""Fetch Rasa NLU training data from an http(s) URL (an annotation platform's export endpoint).

The token comes from an environment variable and travels only in a request header: never in the
URL, never in logs, params, tags, artifacts or error messages. Transient failures (timeouts,
connection errors, 5xx) are retried a bounded number of times with exponential backoff.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

DEFAULT_TOKEN_ENV = "NLU_MLFLOW_DATA_TOKEN"
DEFAULT_HEADER = "Authorization"  # sent as "Bearer <token>"; any other header gets the bare token
RETRY_STATUSES = (500, 502, 503, 504)
MAX_REDIRECTS = 5


class RemoteDataError(RuntimeError):
    """The data could not be fetched; the message is safe to show and log."""


@dataclass(frozen=True)
class RemoteSource:
    url: str
    token_env: str = DEFAULT_TOKEN_ENV
    header: str = DEFAULT_HEADER
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0

    @property
    def display(self) -> str:
        """The URL without credentials, query or fragment: what logs and params may show."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def _session(source: RemoteSource) -> requests.Session:
    retry = Retry(
        total=source.retries,
        connect=source.retries,
        read=source.retries,
        status=source.retries,
        backoff_factor=source.backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _headers(source: RemoteSource) -> dict[str, str]:
    token = os.environ.get(source.token_env)
    if not token:
        return {}
    return {source.header: f"Bearer {token}" if source.header.lower() == "authorization" else token}


def _follow(source: RemoteSource) -> requests.Response:
    """GET with redirects followed by hand: the token headers go only to the host given, never over a
    downgrade from https to http, so a redirect elsewhere gets the request without them."""
    session, url, given = _session(source), source.url, urlsplit(source.url)
    for _ in range(MAX_REDIRECTS + 1):
        target = urlsplit(url)
        trusted = (target.hostname, target.port) == (given.hostname, given.port) and (
            target.scheme == given.scheme or target.scheme == "https"
        )
        headers = _headers(source) if trusted else {}
        response = session.get(
            url, headers=headers, timeout=source.timeout, stream=True, allow_redirects=False
        )
        if not response.is_redirect:
            return response
        url = urljoin(url, response.headers["Location"])
        response.close()
    raise RemoteDataError(f"{source.display}: more than {MAX_REDIRECTS} redirects; check the URL.")


def _get(source: RemoteSource) -> requests.Response:
    try:
        return _follow(source)
    except requests.exceptions.RetryError:
        raise RemoteDataError(
            f"{source.display}: still failing after {source.retries} retries (server errors); "
            "try again later."
        ) from None
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        reason = getattr(exc.args[0] if exc.args else None, "reason", None)  # urllib3's MaxRetryError
        timed_out = isinstance(exc, requests.exceptions.Timeout) or isinstance(reason, Urllib3Timeout)
        kind = "did not answer within" if timed_out else "unreachable within"
        raise RemoteDataError(
            f"{source.display}: {kind} {source.timeout:g} s after {source.retries} retries; check the URL "
            "and the server, or raise --data-timeout."
        ) from None


def _check_status(source: RemoteSource, response: requests.Response) -> None:
    if response.status_code in (401, 403):
        raise RemoteDataError(
            f"{source.display}: the server refused access (HTTP {response.status_code}); set a valid token "
            f"in the environment variable {source.token_env}."
        )
    if response.status_code >= 500:
        raise RemoteDataError(
            f"{source.display}: HTTP {response.status_code} after {source.retries} retries; try again later."
        )
    if response.status_code >= 400:
        raise RemoteDataError(f"{source.display}: HTTP {response.status_code}; check the URL.")


def _body(source: RemoteSource, response: requests.Response) -> bytes:
    try:
        body = response.raw.read(decode_content=True)
    except Exception:  # urllib3 raises ProtocolError/IncompleteRead variants for cut connections
        raise RemoteDataError(f"{source.display}: the download was cut short; try again.") from None
    expected = response.headers.get("Content-Length")
    if (
        expected
        and expected.isdigit()
        and int(expected) != len(body)
        and not response.headers.get("Content-Encoding")
    ):
        raise RemoteDataError(
            f"{source.display}: the download was cut short ({len(body)} of {expected} bytes); try again."
        )
    return body


def suffix_for(body: bytes, content_type: str) -> str:
    """``.json`` for Rasa JSON NLU data, ``.yml`` otherwise (Rasa YAML)."""
    if "json" in content_type.lower():
        return ".json"
    try:
        return ".json" if isinstance(json.loads(body), dict) else ".yml"
    except (ValueError, UnicodeDecodeError):
        return ".yml"


def fetch(source: RemoteSource, dest_dir: Path) -> Path:
    """Download the data into ``dest_dir``; the file keeps Rasa's format (YAML or JSON)."""
    response = _get(source)
    _check_status(source, response)
    body = _body(source, response)
    if not body.strip():
        raise RemoteDataError(f"{source.display}: the server sent no data; check the export endpoint.")
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / ("remote_nlu" + suffix_for(body, response.headers.get("Content-Type", "")))
    path.write_bytes(body)
    return path
