"""Rasa tracker stores written as Rasa writes them: Rasa's own ``events`` table (``SQLTrackerStore.SQLEvent``)
and event JSON from Rasa's own event classes (``UserUttered.as_dict``, ``ActionExecuted.as_dict``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa


def create_events_table(url: str) -> sa.engine.Engine:
    """An empty tracker store with Rasa's table, created from Rasa's own table definition."""
    from rasa.core.tracker_store import SQLTrackerStore

    engine = sa.create_engine(url, future=True)
    SQLTrackerStore.SQLEvent.__table__.create(engine, checkfirst=True)
    return engine


def user_event(
    text: str,
    intent: str,
    ranking: Sequence[tuple[str, float]],
    entities: Sequence[dict] = (),
    model_id: str = "model-1",
    channel: str = "rest",
    timestamp: float = 1_790_000_000.0,
) -> dict:
    """A user event as Rasa stores it (``UserUttered.as_dict()``), with a parse and ``metadata.model_id``."""
    from rasa.shared.core.events import UserUttered

    confidence = dict(ranking).get(intent, ranking[0][1] if ranking else 0.0)
    parse = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": list(entities),
        "text": text,
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
    }
    event = UserUttered(
        text, parse["intent"], list(entities), parse_data=parse, input_channel=channel,
        message_id="m" + str(abs(hash((text, timestamp)))), metadata={"model_id": model_id},
        timestamp=timestamp,
    )  # fmt: skip
    return event.as_dict()


def action_event(name: str, timestamp: float = 1_790_000_000.0) -> dict:
    from rasa.shared.core.events import ActionExecuted

    return ActionExecuted(name, policy="RulePolicy", confidence=1.0, timestamp=timestamp).as_dict()


def insert_events(engine: sa.engine.Engine, sender: str, events: Sequence[dict | str]) -> None:
    """Rows as ``SQLTrackerStore`` writes them (a string is stored as-is in ``data``: malformed JSON)."""
    rows = []
    for event in events:
        if isinstance(event, str):
            rows.append({"sender_id": sender, "type_name": "user", "timestamp": 0.0, "data": event})
            continue
        rows.append(
            {
                "sender_id": sender,
                "type_name": event["event"],
                "timestamp": event["timestamp"],
                "intent_name": (event.get("parse_data") or {}).get("intent", {}).get("name"),
                "action_name": event.get("name"),
                "data": json.dumps(event),
            }
        )
    table = sa.table(
        "events",
        *(
            sa.column(c)
            for c in ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
        ),
    )
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
