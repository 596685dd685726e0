"""A team's setup on PostgreSQL: Rasa's tracker store and the inbox in one throw-away cluster (two databases);
collect, a late commit behind the watermark, forget. Rows are written with Rasa's own table and events."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.live.inbox_store import SECRET_ENV, InboxStore
from nlu_mlflow.workflow import inbox
from tests.helpers import servers
from tests.helpers.tracker import action_event, create_events_table, insert_events, user_event

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    if servers.postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/install-postgres.sh` (CI does).")
    with servers.postgres(extra_databases=("rasa", "inbox")) as uri:
        base = uri.rsplit("/", 1)[0]
        yield f"{base}/rasa", f"{base}/inbox"


def _insert_at(connection, event_id: int, text: str) -> None:
    insert = (
        "INSERT INTO events (id, sender_id, type_name, timestamp, data) VALUES (:i, 'late', 'user', 1, :d)"
    )
    connection.execute(
        sa.text(insert), {"i": event_id, "d": json.dumps(user_event(text, "greet", [("greet", 0.9)]))}
    )


def test_collect_from_and_into_postgresql(cluster, monkeypatch):
    tracker_url, inbox_url = cluster
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(Exception, match=SECRET_ENV):  # a shared inbox needs the key from the environment
        InboxStore(inbox_url).sender_hash("x")
    monkeypatch.setenv(SECRET_ENV, "team-secret-for-tests")
    engine, store = create_events_table(tracker_url), InboxStore(inbox_url)
    fallback = [("nlu_fallback", 0.3), ("greet", 0.25)]
    insert_events(engine, "alice", [
        user_event("do you sell shoes", "nlu_fallback", fallback), action_event("action_default_fallback"),
        user_event("mail x@y.org", "greet", [("greet", 0.9)]),
    ])  # fmt: skip
    insert_events(engine, "bob", [user_event("do you sell shoes", "nlu_fallback", fallback)])
    done = inbox.collect(store, tracker_url, rules_of.Rules())
    assert (done.events, done.new_items) == (3, 2)
    with engine.begin() as connection:  # a gap in the ids, then the sequence moves on
        _insert_at(connection, 1000, "late one")
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('events', 'id'), 2000)"))
    insert_events(engine, "dave", [user_event("hello", "greet", [("greet", 0.9)])])
    assert inbox.collect(store, tracker_url, rules_of.Rules()).events == 2
    with engine.begin() as connection:  # a second Rasa worker commits id 1500 behind the watermark (2001)
        _insert_at(connection, 1500, "later still")
    assert inbox.collect(store, tracker_url, rules_of.Rules()).events == 1
    assert inbox.collect(store, tracker_url, rules_of.Rules()).events == 0
    keys = {item.key: item for item in store.items()}
    assert set(keys) == {"do you sell shoes", "mail [email]", "late one", "hello", "later still"}
    assert keys["do you sell shoes"].count == 2 and keys["do you sell shoes"].reasons == [
        "fallback",
        "low_margin",
    ]
    gone = store.forget("alice")
    assert (gone.items, gone.shared_items) == (1, 1) and store.item_by_key("do you sell shoes").count == 1
