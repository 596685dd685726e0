"""Inbox items for annotation tests, put in through the inbox store's own tables (what `inbox collect` writes:
masked text, the served parse, reasons, a sender hash) and a copy of the pizza assistant to annotate into."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nlu_mlflow.live import inbox_store as s

from . import PIZZA_PROJECT


def add_item(
    store: s.InboxStore,
    text: str,
    intent: str | None = "nlu_fallback",
    confidence: float = 0.3,
    entities: list[dict] | None = None,
    sender: str = "user-1",
    score: float = 3.0,
    ranking: list[dict] | None = None,
) -> int:
    with store.transaction() as connection:
        item_id = connection.execute(
            s.ITEMS.insert().values(
                key=text.lower(), text=text, count=1, first_seen=1.0, last_seen=2.0, channels='["rest"]',
                intent=intent, confidence=confidence, ranking=json.dumps(ranking or []),
                entities=json.dumps(entities or []), reasons='["fallback"]', score=score, state=s.QUEUED,
                model_version="1",
            )
        ).inserted_primary_key[0]  # fmt: skip
        connection.execute(
            s.SENDERS.insert().values(item_id=item_id, sender_hash=store.sender_hash(sender), count=1)
        )
    return item_id


def pizza_copy(tmp_path: Path) -> Path:
    """The pizza assistant copied (the tests write annotated files into its data/)."""
    return Path(shutil.copytree(PIZZA_PROJECT, tmp_path / "pizza-assistant"))
