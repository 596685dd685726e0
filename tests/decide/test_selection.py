import pytest

from nlu_mlflow.decide.selection import select_best

F1 = "intent_f1_weighted"


@pytest.mark.parametrize(
    ("candidates", "best"),
    [
        ({"a": {F1: 0.9}, "b": {F1: 0.8}}, "a"),
        ({"a": {F1: 0.9, "critical_failures": 1}, "b": {F1: 0.8, "critical_failures": 0}}, "b"),
        ({"a": {F1: 0.9, "critical_failures": 2}, "b": {F1: 0.8, "critical_failures": 1}}, None),
        ({"a": {F1: 0.8}, "b": {F1: 0.8}}, "a"),
        ({"a": {}, "b": {F1: 0.1}}, "b"),
        ({}, None),
    ],
    ids=[
        "highest-wins",
        "critical-failure-never-best",
        "none-pass",
        "tie-first-by-name",
        "missing-metric",
        "empty",
    ],
)
def test_best_is_highest_among_candidates_passing_every_critical_utterance(candidates, best):
    assert select_best(candidates, F1).best == best


def test_reasons_explain_every_candidate():
    chosen = select_best({"a": {F1: 0.95, "critical_failures": 1}, "b": {F1: 0.8}}, F1)
    assert chosen.reasons["a"] == "fails 1 critical utterance(s)"
    assert chosen.reasons["b"].startswith("best intent_f1_weighted = 0.8000")


def test_other_primary_metric():
    assert (
        select_best(
            {"a": {F1: 0.9, "entity_f1_weighted": 0.1}, "b": {F1: 0.8, "entity_f1_weighted": 0.5}},
            "entity_f1_weighted",
        ).best
        == "b"
    )


def test_a_lower_critical_pass_rate_is_honoured():
    """Issue 13 item 4: min_critical_pass_rate 0.9 lets a candidate with one failure in 20 be best."""
    candidates = {
        "a": {F1: 0.95, "critical_failures": 1, "critical_pass_rate": 0.95},
        "b": {F1: 0.80, "critical_failures": 0, "critical_pass_rate": 1.0},
        "c": {F1: 0.99, "critical_failures": 5, "critical_pass_rate": 0.75},
    }
    assert select_best(candidates, F1, 0.9).best == "a"
    assert select_best(candidates, F1, 0.9).reasons["c"] == "fails 5 critical utterance(s)"
    assert select_best(candidates, F1).best == "b"


CONV = "core_conversation_accuracy"


@pytest.mark.parametrize(
    ("candidates", "rate", "best"),
    [
        ({"a": {F1: 0.9, CONV: 0.5, "core_conversations_failed": 1}, "b": {F1: 0.8, CONV: 1.0}}, 1.0, "b"),
        ({"a": {F1: 0.9, CONV: 0.5}, "b": {F1: 0.8, CONV: 1.0}}, 0.5, "a"),
        ({"a": {F1: 0.9, CONV: 0.5}}, 1.0, None),
        ({"a": {F1: 0.9}}, 1.0, "a"),  # no test conversations: nothing to gate
    ],
    ids=["failed-conversation-never-best", "lowered-rate", "none-pass", "no-conversations"],
)
def test_test_conversations_gate_selection_like_critical_utterances(candidates, rate, best):
    chosen = select_best(candidates, F1, 1.0, rate)
    assert chosen.best == best
    if best != "a" and "a" in candidates and CONV in candidates["a"]:
        assert "test conversation(s)" in chosen.reasons["a"]
