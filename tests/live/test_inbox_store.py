"""The inbox store on a real SQLite file: annotations idempotent, written marks, forget, ranking order."""

from __future__ import annotations

import sqlalchemy as sa

from nlu_mlflow.live import inbox_store as s
from nlu_mlflow.live.inbox_store import Annotation, InboxStore


def _store(tmp_path) -> InboxStore:
    return InboxStore(f"sqlite:///{tmp_path / 'inbox.db'}")


def _add_item(store: InboxStore, key: str, score: float, count: int, senders: dict[str, int], state=s.QUEUED):
    with store.transaction() as connection:
        item_id = connection.execute(
            s.ITEMS.insert().values(
                key=key, text=key, count=count, first_seen=1.0, last_seen=2.0, channels="[]",
                ranking="[]", entities="[]", reasons='["fallback"]', score=score, state=state,
            )
        ).inserted_primary_key[0]  # fmt: skip
        for sender, n in senders.items():
            connection.execute(
                s.SENDERS.insert().values(item_id=item_id, sender_hash=store.sender_hash(sender), count=n)
            )
    return item_id


def test_the_default_inbox_lies_beside_a_sqlite_mlflow_store(tmp_path):
    assert s.default_url(f"sqlite:///{tmp_path}/mlruns.db") == f"sqlite:///{tmp_path}/inbox.db"
    assert s.default_url("http://tracking:5000", tmp_path) == f"sqlite:///{tmp_path.resolve()}/inbox.db"


def test_ranked_offers_open_items_by_score_then_count(tmp_path):
    store = _store(tmp_path)
    low = _add_item(store, "low", 1.0, 50, {"a": 50})
    high = _add_item(store, "high", 3.0, 1, {"a": 1})
    _add_item(store, "done", 9.0, 1, {"a": 1}, state=s.PUSHED)
    tie = _add_item(store, "tie", 1.0, 60, {"b": 60})
    assert [item.id for item in store.ranked(10)] == [high, tie, low]
    assert [item.id for item in store.ranked(1)] == [high]


def test_annotations_are_added_once_per_source_id_and_marked_written(tmp_path):
    store = _store(tmp_path)
    item = _add_item(store, "i want a pizza", 1.0, 1, {"a": 1})
    store.mark_pushed([item], [17])
    assert store.item(item).state == s.PUSHED and store.item(item).task_id == "17"
    note = Annotation(item, "i want a pizza", "order_pizza", [], "ann@example.org", 5.0, "label-studio", "41")
    assert len(store.add_annotations([note])) == 1
    assert store.add_annotations([note]) == []  # the same annotation again: nothing new
    assert store.item(item).state == s.ANNOTATED
    [unwritten] = store.unwritten_annotations()
    assert unwritten.intent == "order_pizza" and unwritten.annotator == "ann@example.org"
    store.mark_written([unwritten.id], "data/nlu/annotated/pull-1.yml")
    assert store.unwritten_annotations() == []
    assert store.item(item).state == s.WRITTEN


def test_forget_erases_a_senders_own_items_and_keeps_shared_ones_less_their_count(tmp_path):
    store = _store(tmp_path)
    own = _add_item(store, "my mail is [EMAIL]", 1.0, 2, {"alice": 2})
    shared = _add_item(store, "hi", 1.0, 5, {"alice": 1, "bob": 4})
    written = _add_item(store, "i am alice", 1.0, 1, {"alice": 1})
    store.mark_pushed([own, written], ["7", "8"])
    store.add_annotations([Annotation(written, "i am alice", "greet", source_id="1", annotator="ann")])
    [note] = store.unwritten_annotations()
    store.mark_written([note.id], "data/nlu/annotated/a.yml")
    assert sorted(store.forget_preview("alice")) == ["7", "8"]
    gone = store.forget("alice")
    assert (gone.items, sorted(gone.task_ids), gone.shared_items) == (2, ["7", "8"], 1)
    assert gone.written_files == ["data/nlu/annotated/a.yml"]
    assert [item.key for item in store.items()] == ["hi"]
    assert store.item(shared).count == 4
    [kept] = store.annotations()
    assert (kept.item_id, kept.text, kept.annotator) == (
        None,
        "",
        "ann",
    )  # who annotated stays, the text goes
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(s.SENDERS.c.sender_hash)).scalars().all() == [
            store.sender_hash("bob")
        ]
    assert store.forget("alice").items == 0


def test_sender_ids_are_stored_only_as_keyed_hashes(tmp_path, monkeypatch):
    monkeypatch.delenv(s.SECRET_ENV, raising=False)
    digest = _store(tmp_path).sender_hash("+4915112345678")
    assert (tmp_path / "inbox.db.key").stat().st_mode & 0o077 == 0
    assert "4915112345678" not in digest and _store(tmp_path).sender_hash("+4915112345678") == digest
    monkeypatch.setenv(s.SECRET_ENV, "another secret")
    assert _store(tmp_path).sender_hash("+4915112345678") != digest
