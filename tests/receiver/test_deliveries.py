"""The delivery log (SQLite in the work dir): each id once, arrival order, pending deliveries kept."""

from __future__ import annotations

import sqlite3
import time

from nlu_mlflow.receiver.deliveries import (
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_QUEUED,
    STATUS_RUNNING,
    DeliveryLog,
)

EVENT = "model_version_alias.created"


def test_a_delivery_id_is_stored_once(tmp_path):
    log = DeliveryLog(tmp_path / "d.sqlite")
    assert log.add("d1", EVENT, {"version": "1"}, STATUS_QUEUED, "waiting") is True
    assert log.add("d1", EVENT, {"version": "2"}, STATUS_QUEUED, "waiting") is False
    [record] = log.all()
    assert (record.delivery_id, record.status, record.payload, record.attempts) == (
        "d1",
        STATUS_QUEUED,
        {"version": "1"},
        0,
    )


def test_pending_deliveries_come_back_in_arrival_order_also_from_a_new_log_object(tmp_path):
    log = DeliveryLog(tmp_path / "d.sqlite")
    for delivery_id in ("c", "a", "b"):  # ids that do not sort in arrival order
        log.add(delivery_id, EVENT, {}, STATUS_QUEUED, "waiting")
    log.start_attempt("c")  # a receiver stopped while working on "c"

    reopened = DeliveryLog(tmp_path / "d.sqlite")  # the restarted receiver
    order = []
    while (record := reopened.next_pending()) is not None:
        order.append((record.delivery_id, record.status))
        reopened.finish(record.delivery_id, STATUS_DONE, "ok")
    assert order == [("c", STATUS_RUNNING), ("a", STATUS_QUEUED), ("b", STATUS_QUEUED)]
    assert reopened.pending_count() == 0


def test_attempts_are_counted_and_the_outcome_kept(tmp_path):
    log = DeliveryLog(tmp_path / "d.sqlite")
    log.add("d1", EVENT, {}, STATUS_QUEUED, "waiting")
    log.start_attempt("d1")
    log.start_attempt("d1")
    record = log.finish("d1", STATUS_FAILED, "x" * 5000)
    assert (record.status, record.attempts, len(record.outcome)) == (STATUS_FAILED, 2, 2000)
    assert [r.delivery_id for r in log.recent(1)] == ["d1"]


def test_pruning_forgets_old_finished_deliveries_but_never_pending_ones(tmp_path):
    log = DeliveryLog(tmp_path / "d.sqlite")
    for delivery_id, status in [
        ("old-done", STATUS_DONE),
        ("old-queued", STATUS_QUEUED),
        ("new-done", STATUS_DONE),
    ]:
        log.add(delivery_id, EVENT, {}, status, "")
    with sqlite3.connect(log.path) as db:  # the old ones last changed a day ago
        db.execute(
            "UPDATE deliveries SET updated_at = ? WHERE delivery_id LIKE 'old-%'", (time.time() - 86400,)
        )
    log.prune(keep_s=3600)
    assert [r.delivery_id for r in log.all()] == ["old-queued", "new-done"]


def test_a_log_written_by_the_previous_receiver_is_still_read(tmp_path):
    path = tmp_path / "d.sqlite"
    with sqlite3.connect(path) as db:  # the schema before deliveries were queued
        db.execute(
            "CREATE TABLE deliveries (delivery_id TEXT PRIMARY KEY, event TEXT NOT NULL, status TEXT NOT NULL,"
            " outcome TEXT NOT NULL, attempts INTEGER NOT NULL, received_at REAL NOT NULL,"
            " updated_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO deliveries VALUES ('old', ?, 'done', 'live', 1, 1.0, ?)", (EVENT, time.time())
        )
    log = DeliveryLog(path)
    assert log.add("old", EVENT, {}, STATUS_QUEUED, "waiting") is False  # still known: not queued again
    assert log.add("new", EVENT, {"version": "3"}, STATUS_QUEUED, "waiting") is True
    assert [(r.delivery_id, r.payload) for r in log.all()] == [("old", {}), ("new", {"version": "3"})]
