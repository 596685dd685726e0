"""The inbox's steps in order: collect live messages from Rasa's tracker store, re-parse with production,
report counts, forget a sender. The rules are in decide/inbox.py and decide/masking.py; the databases are
reached through live/ (tracker-store reader, inbox store)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.live.inbox_store import OPEN_STATES, Forgotten, InboxStore, default_url

INBOX_URL_ENV = "NLU_MLFLOW_INBOX_URL"


def open_inbox(inbox_url: str | None = None, tracking_uri: str | None = None) -> InboxStore:
    """The inbox at ``inbox_url``, else ``$NLU_MLFLOW_INBOX_URL``, else inbox.db beside the MLflow store."""
    tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return InboxStore(inbox_url or os.environ.get(INBOX_URL_ENV) or default_url(tracking, Path.cwd()))


@dataclass(frozen=True)
class InboxCounts:
    """What the inbox holds: items by state, open items by reason, the oldest open item's first sighting."""

    by_state: dict[str, int]
    by_reason: dict[str, int]
    oldest_open_first_seen: float | None
    oldest_open_text: str | None  # masked

    @property
    def open(self) -> int:
        return sum(self.by_state[state] for state in OPEN_STATES)

    def to_dict(self) -> dict:
        """For the nightly summary JSON (no text: the summary may travel further than the inbox)."""
        return {
            "open": self.open,
            "by_state": self.by_state,
            "by_reason": self.by_reason,
            "oldest_open_first_seen": self.oldest_open_first_seen,
        }

    def line(self) -> str:
        """One line for the Slack message."""
        reasons = ", ".join(f"{name} {n}" for name, n in sorted(self.by_reason.items())) or "none"
        return f"inbox: {self.open} to review ({reasons}); {self.by_state['pushed']} in annotation"


def counts(store: InboxStore) -> InboxCounts:
    by_reason: Counter[str] = Counter()
    for reasons in store.open_reasons():
        by_reason.update(reasons)
    oldest = store.oldest_open()
    return InboxCounts(
        store.state_counts(),
        dict(by_reason),
        oldest.first_seen if oldest else None,
        oldest.text if oldest else None,
    )


def forget(store: InboxStore, sender_id: str) -> Forgotten:
    """Erase one sender's messages from the inbox (the Label Studio tasks are the caller's to delete)."""
    return store.forget(sender_id)
