"""Webhook signature and timestamp checks: pure functions, small tables."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature as mlflow_signature

from nlu_mlflow.receiver.signature import (
    HEADER_DELIVERY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Delivery,
    MalformedDelivery,
    SignatureError,
    check_window,
    sign,
    verify,
)

SECRET = "whsec-test-0123456789"
BODY = b'{"entity": "model_version_alias", "action": "created", "data": {"alias": "production"}}'
NOW = 1_800_000_000


def headers(delivery_id="d-1", timestamp=NOW, secret=SECRET, body=BODY, **overrides) -> dict[str, str]:
    values = {
        HEADER_DELIVERY_ID: delivery_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, delivery_id, timestamp, body),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_sign_matches_what_mlflow_sends():
    # MLflow's own signer (a private function, used here only as the reference to agree with)
    assert sign(SECRET, "d-1", NOW, BODY) == mlflow_signature(SECRET, "d-1", str(NOW), BODY.decode())


def test_sign_is_base64_hmac_sha256_of_id_timestamp_body():
    digest = hmac.new(SECRET.encode(), b"d-1.%d." % NOW + BODY, hashlib.sha256).digest()
    assert sign(SECRET, "d-1", NOW, BODY) == "v1," + base64.b64encode(digest).decode()


def test_a_good_delivery_verifies():
    assert verify(SECRET, headers(), BODY, NOW) == Delivery("d-1", NOW)


def test_header_names_are_case_insensitive():
    lower = {k.lower(): v for k, v in headers().items()}
    assert verify(SECRET, lower, BODY, NOW).delivery_id == "d-1"


def test_one_of_several_signatures_may_match():
    good = headers()[HEADER_SIGNATURE]
    assert verify(SECRET, headers(**{HEADER_SIGNATURE: f"v1,AAAA {good}"}), BODY, NOW)


@pytest.mark.parametrize(
    ("_case", "given_headers", "body", "now", "error", "status", "message"),
    [
        (
            "no delivery id",
            headers(**{HEADER_DELIVERY_ID: None}),
            BODY,
            NOW,
            MalformedDelivery,
            400,
            "missing header X-MLflow-Delivery-Id",
        ),
        (
            "no timestamp",
            headers(**{HEADER_TIMESTAMP: None}),
            BODY,
            NOW,
            MalformedDelivery,
            400,
            "missing header X-MLflow-Timestamp",
        ),
        (
            "no signature",
            headers(**{HEADER_SIGNATURE: None}),
            BODY,
            NOW,
            MalformedDelivery,
            400,
            "missing header X-MLflow-Signature",
        ),
        (
            "empty signature",
            headers(**{HEADER_SIGNATURE: " "}),
            BODY,
            NOW,
            MalformedDelivery,
            400,
            "missing header X-MLflow-Signature",
        ),
        (
            "timestamp not a number",
            headers(timestamp="soon"),
            BODY,
            NOW,
            MalformedDelivery,
            400,
            "unix seconds",
        ),
        ("other secret", headers(secret="not-the-secret"), BODY, NOW, SignatureError, 401, "does not match"),
        ("body changed", headers(), BODY + b" ", NOW, SignatureError, 401, "does not match"),
        (
            "id changed",
            headers(**{HEADER_DELIVERY_ID: "d-2"}),
            BODY,
            NOW,
            SignatureError,
            401,
            "does not match",
        ),
        (
            "other scheme",
            headers(**{HEADER_SIGNATURE: "v2," + sign(SECRET, "d-1", NOW, BODY)[3:]}),
            BODY,
            NOW,
            SignatureError,
            401,
            "does not match",
        ),
        ("301 s old", headers(), BODY, NOW + 301, SignatureError, 401, "301 s old"),
        ("61 s ahead", headers(), BODY, NOW - 61, SignatureError, 401, "61 s in the future"),
    ],
)
def test_refused_deliveries(_case, given_headers, body, now, error, status, message):
    with pytest.raises(error, match=message) as raised:
        verify(SECRET, given_headers, body, now)
    assert raised.value.status_code == status
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (300, True), (301, False), (-60, True), (-61, False), (3600, False)],
)
def test_timestamp_window(age, accepted):
    if accepted:
        check_window(NOW - age, NOW)
    else:
        with pytest.raises(SignatureError):
            check_window(NOW - age, NOW)
