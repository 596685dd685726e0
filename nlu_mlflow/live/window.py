"""The user messages of a time window, read from Rasa's tracker store for a replay (in memory only).

Keyset pages by id (each a short read, as ``tracker_store.TrackerReader.pages``), user events whose timestamp
falls in the window; the texts are counted in memory and never written anywhere. Malformed event JSON is
skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from nlu_mlflow.live.tracker_store import TrackerReader

PAGE_SIZE = 5000


@dataclass
class WindowTexts:
    """How often each text was said in the window, and the window's event-id range."""

    counts: Counter = field(default_factory=Counter)
    first_id: int | None = None
    last_id: int | None = None
    malformed: int = 0


def read_window(
    reader: TrackerReader, since: float, until: float | None = None, page_size: int = PAGE_SIZE
) -> WindowTexts:
    """Every user text with ``since <= timestamp (< until)``, counted; ``reader.check()`` first."""
    reader.check()
    t = reader.table.c
    wanted = sa.and_(t.type_name == "user", t.timestamp >= since)
    if until is not None:
        wanted = sa.and_(wanted, t.timestamp < until)
    window, last = WindowTexts(), -1
    while True:
        rows = reader.read(sa.select(t.id, t.data).where(t.id > last, wanted).order_by(t.id).limit(page_size))
        if not rows:
            return window
        for event_id, data in rows:
            _count(window, event_id, data)
        last = rows[-1][0]


def _count(window: WindowTexts, event_id: int, data: str) -> None:
    try:
        text = json.loads(data).get("text")
    except (ValueError, TypeError, AttributeError):
        window.malformed += 1
        return
    if not isinstance(text, str) or not text.strip():
        return
    window.counts[text] += 1
    window.first_id = event_id if window.first_id is None else window.first_id
    window.last_id = event_id
