"""Redact URLs before anything is written: the one function every writer (run description, params, tags,
``decision.json``, summary JSON, stdout, logs, messages) passes its text through.

A URL keeps its scheme, user name, host, port and path; a password becomes ``***`` and a query string or
fragment (signed-URL signatures, tokens) becomes ``?***``. ``http://alice:PW@host/x.yml?Sig=S`` is shown as
``http://alice:***@host/x.yml?***``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scheme://anything-up-to-whitespace-or-a-quote: http(s), postgresql+psycopg2, mysql, s3, databricks, ...
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """``url`` with its password and its query string and fragment replaced by ``***``."""
    try:
        parts = urlsplit(url)
        userinfo, at, hostport = parts.netloc.rpartition("@")
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if at:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    else:
        netloc = hostport
    hidden = parts.query or parts.fragment or "?" in url or "#" in url
    if netloc == parts.netloc and not hidden:
        return url
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?***" if hidden else "")


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted."""
    if "://" not in text:
        return text

    def one(match: re.Match) -> str:
        url = match.group(0)
        trail = len(url) - len(url.rstrip(".,;:)]}"))
        return redact_url(url[: len(url) - trail]) + url[len(url) - trail :]

    return _URL.sub(one, text)


def redact(value: object) -> object:
    """Strings redacted, dicts and lists walked (keys too), anything else as it is."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
