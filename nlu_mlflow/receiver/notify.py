"""Tell the team what went live (or failed to): a Slack incoming-webhook message built from version tags.

The message is plain incoming-webhook JSON (``text`` as the fallback, ``blocks`` for the layout), so
Slack, Mattermost and Rocket.Chat accept it. Its content comes from the tags the workflow wrote on
the version (``decide.summary``): config, scores, deltas against the champion, decision reasons.
The webhook URL is a secret (it authorises posting): it is never logged or put into an error.
"""

from __future__ import annotations

import logging
import math

import requests

from nlu_mlflow import constants as c
from nlu_mlflow.decide.redact import redact
from nlu_mlflow.receiver.deploy import DeployError, DeployRefused, DeployResult
from nlu_mlflow.tracking.registry import Version

logger = logging.getLogger("nlu_mlflow")

EVENT_LIVE = "live"
EVENT_FAILED = "failed"
EVENT_REFUSED = "refused"  # not loaded on purpose (an NLU-only model for a full assistant)
TIMEOUT_S = 10.0
MAX_FIELDS = 10  # Slack's limit for a section's fields
MAX_TEXT = 2900  # Slack's limit for a text object is 3000 characters


class NotifyError(RuntimeError):
    """The chat webhook refused the message or could not be reached (the message never holds the URL)."""


def build_message(version: Version, event: str, detail: str = "") -> dict:
    """Incoming-webhook JSON: ``version`` went live (``EVENT_LIVE``), failed to (``EVENT_FAILED``) or was
    refused (``EVENT_REFUSED``)."""
    title = headline(version, event)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        _section(detail or "-"),
    ]
    fields = score_fields(version.tags)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    reasons = decision_reasons(version.tags)
    if reasons:
        decision = version.tags.get(c.TAG_DECISION)
        heading = f"*Decision: {decision}*" if decision else "*Decision*"
        blocks.append(_section(heading + "\n" + "\n".join(f"• {r}" for r in reasons)))
    return {"text": f"{title}. {detail}".strip(), "blocks": blocks}


def went_live(result: DeployResult, rasa_url: str) -> dict:
    detail = f"Rasa {rasa_url} serves {result.model_file} (loaded in {result.seconds:.1f} s)."
    return build_message(result.version, EVENT_LIVE, detail)


def not_live(model_name: str, error: DeployError, rasa_url: str, serving: str) -> dict:
    detail = f"{error}. Rasa {rasa_url} keeps serving {serving}."
    if error.version is None:
        return text_message(f"{model_name}: nothing went live. {detail}")
    event = EVENT_REFUSED if isinstance(error, DeployRefused) else EVENT_FAILED
    return build_message(error.version, event, detail)


def text_message(text: str) -> dict:
    """A message with no version to describe (e.g. the registry has no such version)."""
    return {"text": text[:MAX_TEXT], "blocks": [_section(text)]}


def headline(version: Version, event: str) -> str:
    config = version.tags.get(c.TAG_CONFIG)
    what = f"{version.name} version {version.version}" + (f" ({config})" if config else "")
    if event == EVENT_LIVE:
        return f"{what} is live"
    return f"{what} was refused" if event == EVENT_REFUSED else f"{what} failed to go live"


def score_fields(tags: dict[str, str]) -> list[dict]:
    """One ``*metric*\\nvalue (delta)`` field per headline metric the version carries."""
    names = [tags["primary_metric"]] if tags.get("primary_metric") else []
    names += [name for name in c.KEY_METRICS if name not in names]
    fields = []
    for name in names:
        value = _number(tags.get(name))
        if value is None:
            continue
        delta = _number(tags.get(c.TAG_DELTA_PREFIX + name))
        shown = f"{value:.4f}" + (f" ({delta:+.4f})" if delta is not None else "")
        fields.append({"type": "mrkdwn", "text": f"*{name}*\n{shown}"})
    return fields[:MAX_FIELDS]


def decision_reasons(tags: dict[str, str]) -> list[str]:
    raw = tags.get(c.TAG_DECISION_REASONS, "")
    return [reason.strip() for reason in raw.split(";") if reason.strip()]


def post_slack(url: str, payload: dict) -> None:
    """POST ``payload`` to an incoming-webhook URL; raises ``NotifyError`` (without the URL) on failure."""
    try:
        response = requests.post(url, json=redact(payload), timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise NotifyError(f"chat webhook unreachable ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise NotifyError(f"chat webhook answered {response.status_code}")


def announce(url: str | None, payload: dict) -> bool:
    """Post ``payload`` when a URL is configured; a failure is logged, not raised (the deploy stands)."""
    if not url:
        return False
    try:
        post_slack(url, payload)
    except NotifyError as exc:
        logger.error("announcing '%s' failed: %s", payload.get("text", "")[:200], exc)
        return False
    return True


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value
