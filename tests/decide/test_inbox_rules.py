"""The inbox's rules: reasons from a served parse, the score that orders items, states, merging."""

from __future__ import annotations

import pytest

from nlu_mlflow.decide import inbox as r

RULES = r.Rules(margin=0.1, frequent=5)


@pytest.mark.parametrize(
    "intent, ranking, reasons",
    [
        ("greet", [("greet", 0.95), ("bye", 0.03)], set()),
        ("greet", [("greet", 0.50), ("bye", 0.45)], {r.LOW_MARGIN}),
        ("nlu_fallback", [("nlu_fallback", 0.3), ("greet", 0.1)], {r.FALLBACK}),
        ("nlu_fallback", [("nlu_fallback", 0.3), ("greet", 0.29)], {r.FALLBACK, r.LOW_MARGIN}),
        ("greet", [("greet", 1.0)], set()),  # a single intent: no margin to speak of
        ("greet", [], set()),
    ],
)
def test_reasons_of_a_served_parse(intent, ranking, reasons):
    assert r.reasons(intent, [{"name": n, "confidence": c} for n, c in ranking], RULES) == reasons


@pytest.mark.parametrize(
    "first, second",
    [
        (([r.FALLBACK], 1), ([r.LOW_MARGIN], 1)),
        (([r.OUTDATED_DISAGREES], 1), ([r.LOW_MARGIN], 1)),
        (([r.LOW_MARGIN], 1), ([r.FREQUENT], 5)),  # a reason beats mere frequency at the threshold,
        (([r.FREQUENT], 1000), ([r.LOW_MARGIN], 1)),  # not a message a thousand users sent
        (([r.FALLBACK], 100), ([r.FALLBACK], 10)),
        (([r.FREQUENT], 5), ([], 1)),
    ],
)
def test_score_orders_reasons_then_frequency(first, second):
    assert r.score(*first) > r.score(*second)


@pytest.mark.parametrize(
    "served, production, disagree",
    [("greet", "bye", True), ("greet", "greet", False), ("greet", None, False), (None, "greet", True)],
)
def test_disagreement(served, production, disagree):
    assert r.disagreement(served, production) is disagree


def _delta(count=1, reasons=(), when=10.0, intent="greet"):
    delta = r.ItemDelta("hi", "Hi", count, when, when, {"rest"}, reasons=set(reasons))
    delta.parse = {"model_id": "m2", "intent": intent, "confidence": 0.9, "ranking": [], "entities": []}
    delta.parse_seen = when
    return delta


@pytest.mark.parametrize(
    "existing_state, known, reasons, state",
    [
        (None, False, (), "new"),
        (None, False, (r.FALLBACK,), "queued"),
        (None, True, (r.FALLBACK,), "skipped"),
        ("new", False, (r.LOW_MARGIN,), "queued"),
        ("pushed", False, (r.FALLBACK,), "pushed"),
        ("annotated", False, (r.FALLBACK,), "annotated"),
        ("written", False, (r.FALLBACK,), "written"),
        ("skipped", False, (r.FALLBACK,), "skipped"),
    ],
)
def test_merged_state(existing_state, known, reasons, state):
    existing = None
    if existing_state:
        existing = {
            "count": 1,
            "first_seen": 1.0,
            "last_seen": 2.0,
            "channels": [],
            "reasons": [],
            "state": existing_state,
        }
    assert r.merged(existing, _delta(reasons=reasons), RULES, known, {})["state"] == state


def test_merged_adds_counts_keeps_the_latest_parse_and_maps_the_version():
    existing = {
        "count": 4,
        "first_seen": 1.0,
        "last_seen": 20.0,
        "channels": ["slack"],
        "reasons": [],
        "state": "new",
    }
    older = r.merged(existing, _delta(when=5.0, intent="bye"), RULES, False, {"m2": "7"})
    assert (older["count"], older["first_seen"], older["last_seen"]) == (5, 1.0, 20.0)
    assert older["channels"] == ["rest", "slack"] and older["reasons"] == [r.FREQUENT]
    assert "intent" not in older  # an older message does not replace the latest parse
    newer = r.merged(existing, _delta(when=30.0, intent="bye"), RULES, False, {"m2": "7"})
    assert (newer["intent"], newer["model_version"], newer["last_seen"]) == ("bye", "7", 30.0)


def test_a_fallback_for_a_message_the_inbox_lacks_records_nothing():
    assert r.merged(None, r.ItemDelta("x", "x", reasons={r.FALLBACK}), RULES, False, {}) is None


def test_folder_counts_malformed_events_and_ties_a_fallback_action_to_the_senders_last_message():
    import json

    folder = r.Folder(RULES)
    user = {"event": "user", "text": "hello", "parse_data": {"intent": {"name": "greet", "confidence": 0.9}}}
    rows = [
        (1, "a", "user", 1.0, None, json.dumps(user)),
        (2, "a", "user", 1.0, None, "{broken"),
        (3, "a", "user", 1.0, None, json.dumps({"event": "user", "text": ""})),
        (4, "a", "user", 1.0, None, json.dumps([1, 2])),
    ]
    page = folder.fold(rows)
    assert (page.messages, page.malformed, page.event_ids) == (1, 3, [1, 2, 3, 4])
    later = folder.fold([(5, "a", "action", 2.0, "action_default_fallback", "{}")])
    assert later.deltas["hello"].reasons == {r.FALLBACK} and later.deltas["hello"].count == 0


def _user_row(event_id: int, when: float, intent: str, confidence: float, model_id: str | None) -> tuple:
    import json

    event = {
        "event": "user",
        "text": "Where is my order",
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "intent_ranking": []},
        "metadata": {"model_id": model_id} if model_id else {},
    }
    return (event_id, "a", "user", when, None, json.dumps(event))  # json writes NaN as NaN


def test_the_latest_message_gives_the_parse_even_when_no_model_stamped_it():
    folder = r.Folder(RULES)
    page = folder.fold([_user_row(1, 1.0, "check_order", 0.9, None), _user_row(2, 2.0, "cancel", 0.8, None)])
    assert page.deltas["where is my order"].parse["intent"] == "cancel"
    stamped = folder.fold(
        [_user_row(3, 3.0, "check_order", 0.9, "m1"), _user_row(4, 4.0, "cancel", 0.8, "m2")]
    )
    parse = stamped.deltas["where is my order"].parse
    assert (parse["model_id"], parse["intent"], stamped.messages) == ("m2", "cancel", 2)


def test_a_nan_confidence_that_python_json_wrote_is_read_not_counted_malformed():
    page = r.Folder(RULES).fold([_user_row(1, 1.0, "greet", float("nan"), "m1")])
    assert (page.messages, page.malformed) == (1, 0)
