"""Which webhook deliveries were handled, in a SQLite file: each delivery id is handled once,
also across a restart of the receiver (MLflow retries a delivery with the same id).

A delivery is ``done`` only after it succeeded; a ``failed`` one is handled again when MLflow
retries it, and ``attempts`` counts the tries (so a failure is announced once, not per retry).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

STATUS_DONE = "done"
STATUS_FAILED = "failed"
KEEP_S = 7 * 24 * 3600  # far beyond the 5-minute timestamp window, after which a replay is refused anyway

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""
UPSERT = """
INSERT INTO deliveries VALUES (?, ?, ?, ?, 1, ?, ?)
ON CONFLICT(delivery_id) DO UPDATE SET
    status = excluded.status, outcome = excluded.outcome,
    attempts = attempts + 1, updated_at = excluded.updated_at
"""


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: str
    event: str
    status: str
    outcome: str
    attempts: int
    received_at: float
    updated_at: float


class DeliveryLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(SCHEMA)

    def get(self, delivery_id: str) -> DeliveryRecord | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
        return DeliveryRecord(*row) if row else None

    def is_done(self, delivery_id: str) -> bool:
        record = self.get(delivery_id)
        return record is not None and record.status == STATUS_DONE

    def record(self, delivery_id: str, event: str, status: str, outcome: str) -> DeliveryRecord:
        """Store an attempt's result; returns the record (``attempts`` counts this one)."""
        now = time.time()
        with self._db() as db:
            db.execute(UPSERT, (delivery_id, event, status, outcome[:2000], now, now))
        return self.get(delivery_id)  # type: ignore[return-value]

    def all(self) -> list[DeliveryRecord]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM deliveries ORDER BY received_at").fetchall()
        return [DeliveryRecord(*row) for row in rows]

    def prune(self, keep_s: float = KEEP_S) -> None:
        with self._db() as db:
            db.execute("DELETE FROM deliveries WHERE updated_at < ?", (time.time() - keep_s,))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db
