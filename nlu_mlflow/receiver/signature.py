"""Verify an MLflow webhook delivery: its HMAC-SHA256 signature and its timestamp (pure functions).

MLflow 3.5 signs ``{delivery_id}.{timestamp}.{raw_body}`` with the webhook's secret and sends
``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` beside ``X-MLflow-Delivery-Id`` and
``X-MLflow-Timestamp`` (unix seconds). A missing or malformed header is a bad request (400); a
signature that does not match, or a timestamp outside the window, is unauthenticated (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

HEADER_DELIVERY_ID = "X-MLflow-Delivery-Id"
HEADER_TIMESTAMP = "X-MLflow-Timestamp"
HEADER_SIGNATURE = "X-MLflow-Signature"
SIGNATURE_VERSION = "v1"
MAX_AGE_S = 300  # older deliveries are refused (replay protection)
MAX_AHEAD_S = 60  # clock skew allowed for a sender whose clock runs ahead


class SignatureError(Exception):
    """A delivery that must not be handled; ``status_code`` is the HTTP answer."""

    status_code = 401


class MalformedDelivery(SignatureError):
    status_code = 400


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    timestamp: int


def sign(secret: str, delivery_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
    """The verified delivery, or a ``SignatureError`` saying why it is refused (never echoing the secret)."""
    delivery_id, timestamp, signature = _required(headers)
    if not timestamp.isdigit():
        raise MalformedDelivery(f"{HEADER_TIMESTAMP} must be unix seconds")
    expected = sign(secret, delivery_id, timestamp, body)
    if not any(hmac.compare_digest(expected.encode(), given.encode()) for given in signature.split()):
        raise SignatureError(f"{HEADER_SIGNATURE} does not match the body; check the webhook secret")
    check_window(int(timestamp), now)
    return Delivery(delivery_id, int(timestamp))


def check_window(timestamp: int, now: float) -> None:
    age = now - timestamp
    if age > MAX_AGE_S:
        raise SignatureError(f"delivery is {age:.0f} s old (more than {MAX_AGE_S} s); refused as a replay")
    if -age > MAX_AHEAD_S:
        raise SignatureError(
            f"delivery is {-age:.0f} s in the future (more than {MAX_AHEAD_S} s); check clocks"
        )


def _required(headers: Mapping[str, str]) -> tuple[str, str, str]:
    lower = {key.lower(): value for key, value in headers.items()}
    names = (HEADER_DELIVERY_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)
    missing = [name for name in names if not lower.get(name.lower(), "").strip()]
    if missing:
        raise MalformedDelivery(
            f"missing header {', '.join(missing)}; is the webhook registered with a secret?"
        )
    return tuple(lower[name.lower()].strip() for name in names)  # type: ignore[return-value]
