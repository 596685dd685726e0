"""`collect` on tracker stores written with Rasa's own table and event classes (SQLite files here; the
end-to-end tests use a real `rasa run`, and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.live import inbox_store as s
from nlu_mlflow.live.inbox_store import InboxStore
from nlu_mlflow.workflow import inbox
from tests.helpers.tracker import action_event, create_events_table, insert_events, user_event

RULES = rules_of.Rules(margin=0.1, frequent=3, sensitive_entities=frozenset({"name"}))


def _stores(tmp_path):
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    return url, create_events_table(url), InboxStore(f"sqlite:///{tmp_path / 'inbox.db'}")


def test_collect_keeps_unique_masked_messages_with_their_reasons(tmp_path):
    url, tracker, store = _stores(tmp_path)
    insert_events(tracker, "alice", [
        user_event("I want a pizza", "order_pizza", [("order_pizza", 0.95), ("greet", 0.02)]),
        user_event("what's the weather", "nlu_fallback", [("nlu_fallback", 0.3), ("greet", 0.25)]),
        action_event("action_default_fallback"),
        user_event("mail me at bob@example.org", "inform", [("inform", 0.51), ("order_pizza", 0.45)]),
        user_event(
            "I am Anna", "inform", [("inform", 0.9), ("greet", 0.05)],
            [{"entity": "name", "start": 5, "end": 9, "value": "Anna"}],
        ),
    ])  # fmt: skip
    insert_events(tracker, "bob", [
        user_event("i want a  PIZZA", "order_pizza", [("order_pizza", 0.9), ("greet", 0.05)], channel="slack"),
        user_event("do you sell shoes", "greet", [("greet", 0.6), ("order_pizza", 0.3)]),
        action_event("action_default_fallback"),
    ])  # fmt: skip
    result = inbox.collect(store, url, RULES, page_size=2)
    assert (result.events, result.malformed, result.new_items) == (6, 0, 5)
    items = {item.key: item for item in store.items()}
    assert set(items) == {
        "i want a pizza", "what's the weather", "mail me at [email]", "i am [name]", "do you sell shoes",
    }  # fmt: skip
    pizza = items["i want a pizza"]
    assert (pizza.count, pizza.channels, pizza.state, pizza.reasons) == (2, ["rest", "slack"], s.NEW, [])
    assert items["what's the weather"].reasons == ["fallback", "low_margin"]
    assert items["do you sell shoes"].reasons == ["fallback"]  # the fallback action answered it (next page)
    assert items["mail me at [email]"].reasons == ["low_margin"]
    assert items["i am [name]"].entities == [] and items["i am [name]"].text == "I am [NAME]"
    assert [i.key for i in store.ranked(2)] == ["what's the weather", "do you sell shoes"]
    assert "bob@example.org" not in (tmp_path / "inbox.db").read_bytes().decode("latin-1")


def test_a_second_collect_reads_only_new_events_and_counts_malformed_ones(tmp_path):
    url, tracker, store = _stores(tmp_path)
    insert_events(tracker, "a", [user_event("hello", "greet", [("greet", 0.9), ("bye", 0.1)])])
    assert inbox.collect(store, url, RULES).events == 1
    insert_events(tracker, "a", ["{not json", '{"event": "user", "text": null}'])
    insert_events(tracker, "b", [user_event("hello", "greet", [("greet", 0.9), ("bye", 0.1)])] * 2)
    again = inbox.collect(store, url, RULES)
    assert (again.events, again.malformed, again.new_items) == (2, 2, 0)
    [hello] = store.items()
    assert hello.count == 3 and hello.reasons == ["frequent"] and hello.state == s.QUEUED
    assert store.watermark(inbox.source_id(url)).malformed == 2
    assert inbox.collect(store, url, RULES).events == 0


def test_ids_committed_late_behind_the_watermark_are_read_once(tmp_path):
    """Two Rasa workers on PostgreSQL: id 2 commits after id 3 was read. The overlap re-read finds it."""
    url, tracker, store = _stores(tmp_path)
    insert_events(tracker, "a", [user_event(f"message {n}", "greet", [("greet", 0.9)]) for n in range(3)])
    with tracker.begin() as connection:
        connection.execute(sa.text("DELETE FROM events WHERE id = 2"))
    assert inbox.collect(store, url, RULES).events == 2
    with tracker.begin() as connection:  # the late commit: id 2 appears below the watermark (3)
        event = user_event("message late", "greet", [("greet", 0.9)])
        connection.execute(
            sa.text(
                "INSERT INTO events (id, sender_id, type_name, timestamp, data) VALUES (2, 'b', 'user', 1, :d)"
            ),
            {"d": __import__("json").dumps(event)},
        )
    assert inbox.collect(store, url, RULES).events == 1
    assert inbox.collect(store, url, RULES).events == 0
    assert sorted(i.key for i in store.items()) == ["message 0", "message 2", "message late"]


def test_texts_in_the_training_data_are_skipped_and_annotated_ones_not_queued_again(tmp_path):
    url, tracker, store = _stores(tmp_path)
    fallback = [("nlu_fallback", 0.3), ("greet", 0.28)]
    insert_events(
        tracker, "a", [user_event("hi", "nlu_fallback", fallback), user_event("yo", "nlu_fallback", fallback)]
    )
    inbox.collect(store, url, RULES, known_keys=frozenset({"hi"}))
    states = {i.key: i.state for i in store.items()}
    assert states == {"hi": s.SKIPPED, "yo": s.QUEUED}
    yo = store.item_by_key("yo")
    store.add_annotations([s.Annotation(yo.id, "yo", "greet", source_id="1")])
    insert_events(tracker, "b", [user_event("yo", "nlu_fallback", fallback)])
    inbox.collect(store, url, RULES)
    assert store.item(yo.id).state == s.ANNOTATED and store.item(yo.id).count == 2
    assert store.ranked(10) == []


def test_a_crash_leaves_the_watermark_at_the_last_page_recorded_and_nothing_counted_twice(
    tmp_path, monkeypatch
):
    url, tracker, store = _stores(tmp_path)
    insert_events(tracker, "a", [user_event(f"text {n}", "greet", [("greet", 0.9)]) for n in range(5)])
    real, calls = s._advance, []

    def crash_on_the_second_page(connection, *args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(connection, *args)

    monkeypatch.setattr(s, "_advance", crash_on_the_second_page)
    with pytest.raises(RuntimeError, match="killed"):
        inbox.collect(store, url, RULES, page_size=2, commit_every=1)
    assert store.watermark(inbox.source_id(url)).last_id == 2
    assert sorted(i.key for i in store.items()) == ["text 0", "text 1"]  # page 2's items rolled back too
    monkeypatch.setattr(s, "_advance", real)
    assert inbox.collect(store, url, RULES, page_size=2, commit_every=1).events == 3
    assert sorted(i.count for i in store.items()) == [1] * 5


def test_nightly_counts_are_none_without_an_inbox_and_hold_no_text(tmp_path):
    assert inbox.nightly_counts(None, f"sqlite:///{tmp_path / 'mlruns.db'}") is None
    assert not (tmp_path / "inbox.db").exists()
    url, tracker, store = _stores(tmp_path)
    fallback = [("nlu_fallback", 0.3), ("greet", 0.28)]
    insert_events(tracker, "a", [user_event("my card 4111 1111 1111 1111", "nlu_fallback", fallback)])
    inbox.collect(store, url, RULES)
    found = inbox.nightly_counts(None, f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert found.to_dict()["by_reason"] == {"fallback": 1, "low_margin": 1} and found.open == 1
    assert found.line() == "inbox: 1 to review (fallback 1, low_margin 1); 0 in annotation"
    assert "card" not in str(found.to_dict()) and "card" not in found.line()
