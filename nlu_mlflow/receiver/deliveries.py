"""The delivery log: every verified webhook delivery, in a SQLite file in the work dir, so that each delivery
id is handled once and a restarted receiver resumes what it had accepted but not finished.

A delivery to act on (``production`` moved) is stored ``queued`` with its payload before the receiver
answers MLflow; the worker marks it ``running`` (``attempts`` counts its tries) and then ``done``,
``failed`` or ``refused`` with the outcome in words. Deliveries that need no work are stored ``done``
at once. Order is arrival order (SQLite's rowid). Payloads are MLflow's event data (model name, version,
alias); nothing secret is stored.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STATUS_QUEUED = "queued"
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_FAILED = "failed"
STATUS_REFUSED = "refused"
PENDING = (STATUS_QUEUED, STATUS_RUNNING)  # accepted, not finished: resumed after a restart
KEEP_S = 7 * 24 * 3600  # far beyond the 5-minute timestamp window, after which a replay is refused anyway
MAX_OUTCOME = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}'
)
"""
COLUMNS = "delivery_id, event, status, outcome, attempts, received_at, updated_at, payload"


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: str
    event: str
    status: str
    outcome: str
    attempts: int
    received_at: float
    updated_at: float
    payload: dict = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        """What ``GET /deliveries`` shows (not the payload)."""
        return {
            "delivery_id": self.delivery_id,
            "event": self.event,
            "status": self.status,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
        }


class DeliveryLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
            if "payload" not in columns:  # a log written before deliveries were queued
                db.execute("ALTER TABLE deliveries ADD COLUMN payload TEXT NOT NULL DEFAULT '{}'")

    def add(self, delivery_id: str, event: str, payload: dict, status: str, outcome: str) -> bool:
        """Store a new delivery; False (and nothing changed) when its id is already in the log."""
        now = time.time()
        row = (delivery_id, event, status, outcome[:MAX_OUTCOME], 0, now, now, json.dumps(payload))
        with self._db() as db:
            cursor = db.execute(f"INSERT OR IGNORE INTO deliveries ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", row)
        return cursor.rowcount == 1

    def get(self, delivery_id: str) -> DeliveryRecord | None:
        rows = self._select("WHERE delivery_id = ?", (delivery_id,))
        return rows[0] if rows else None

    def next_pending(self) -> DeliveryRecord | None:
        """The oldest delivery accepted but not finished (also one a stopped receiver was working on)."""
        rows = self._select("WHERE status IN (?, ?) ORDER BY rowid LIMIT 1", PENDING)
        return rows[0] if rows else None

    def pending_count(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM deliveries WHERE status IN (?, ?)", PENDING).fetchone()[0]

    def start_attempt(self, delivery_id: str) -> DeliveryRecord:
        """Mark a delivery ``running`` and count the attempt; returns the record."""
        with self._db() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE delivery_id = ?",
                (STATUS_RUNNING, time.time(), delivery_id),
            )
        return self.get(delivery_id)  # type: ignore[return-value]

    def finish(self, delivery_id: str, status: str, outcome: str) -> DeliveryRecord:
        with self._db() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, outcome = ?, updated_at = ? WHERE delivery_id = ?",
                (status, outcome[:MAX_OUTCOME], time.time(), delivery_id),
            )
        return self.get(delivery_id)  # type: ignore[return-value]

    def all(self) -> list[DeliveryRecord]:
        """Every delivery, in arrival order."""
        return self._select("ORDER BY rowid")

    def recent(self, limit: int) -> list[DeliveryRecord]:
        """The ``limit`` latest deliveries, newest first."""
        return self._select("ORDER BY rowid DESC LIMIT ?", (limit,))

    def prune(self, keep_s: float = KEEP_S) -> None:
        """Forget finished deliveries older than ``keep_s``; pending ones are kept whatever their age."""
        with self._db() as db:
            db.execute(
                "DELETE FROM deliveries WHERE updated_at < ? AND status NOT IN (?, ?)",
                (time.time() - keep_s, *PENDING),
            )

    def _select(self, where: str, params: tuple = ()) -> list[DeliveryRecord]:
        with self._db() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM deliveries {where}", params).fetchall()
        return [DeliveryRecord(*row[:7], payload=json.loads(row[7] or "{}")) for row in rows]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db
