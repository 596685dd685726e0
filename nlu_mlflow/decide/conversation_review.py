"""Which live conversations went wrong, and a conversation masked for a test story (pure).

A conversation went wrong when it hit a fallback action, a handoff (action or intent), a restart, or a user
turn whose intent confidence was below ``low_confidence``. Listed newest first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from nlu_mlflow.decide import masking

LOW_CONFIDENCE = 0.5
HANDOFF_ACTIONS = frozenset({"utter_handoff", "action_handoff", "action_human_handoff"})
HANDOFF_INTENTS = frozenset({"human_handoff"})


@dataclass(frozen=True)
class Conversation:
    sender_id: str
    last: float
    turns: int
    fallbacks: int
    handoffs: int
    restarts: int
    low_confidence_turns: int

    @property
    def reasons(self) -> list[str]:
        named = (
            ("fallback", self.fallbacks),
            ("handoff", self.handoffs),
            ("restart", self.restarts),
            ("low_confidence", self.low_confidence_turns),
        )
        return [f"{name} x{n}" for name, n in named if n]


def low_confidence_turns(turns: Iterable[tuple[str, str]], threshold: float = LOW_CONFIDENCE) -> Counter:
    """Per sender, the user turns parsed below ``threshold`` (unreadable events are left out)."""
    found: Counter = Counter()
    for sender, data in turns:
        try:
            confidence = json.loads(data)["parse_data"]["intent"]["confidence"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(confidence, int | float) and confidence < threshold:
            found[sender] += 1
    return found


def went_wrong(signals: Iterable[dict], low: Counter, limit: int) -> list[Conversation]:
    """The conversations with at least one sign of trouble, newest first."""
    found = [
        Conversation(
            s["sender_id"],
            s["last"] or 0.0,
            int(s["turns"] or 0),
            int(s["fallbacks"] or 0),
            int(s["handoffs"] or 0),
            int(s["restarts"] or 0),
            low.get(s["sender_id"], 0),
        )  # fmt: skip
        for s in signals
    ]
    return sorted((c for c in found if c.reasons), key=lambda c: c.last, reverse=True)[:limit]


def masked_events(events: Iterable[dict], sensitive: Iterable[str] = ()) -> list[dict]:
    """A conversation's events with user text, entity values, bot text and slot values masked, and the
    channel's metadata dropped (what a test story may keep)."""
    sensitive = frozenset(sensitive)
    return [_masked(event, sensitive) for event in events]


def _masked(event: dict, sensitive: frozenset) -> dict:
    event = {k: v for k, v in event.items() if k not in ("metadata", "input_channel", "message_id")}
    kind = event.get("event")
    if kind == "user" and isinstance(event.get("text"), str):
        parse = dict(event.get("parse_data") or {})
        done = masking.mask(event["text"], parse.get("entities") or [], sensitive)
        parse.update(text=done.text, entities=list(done.entities))
        parse.pop("metadata", None)
        return {**event, "text": done.text, "parse_data": parse}
    if kind == "bot" and isinstance(event.get("text"), str):
        return {**event, "text": masking.mask(event["text"]).text, "data": {}}
    if kind == "slot" and isinstance(event.get("value"), str):
        name = event.get("name")
        if isinstance(name, str) and name in sensitive:
            return {**event, "value": masking.placeholder(name)}
        return {**event, "value": masking.mask(event["value"]).text}
    return event
