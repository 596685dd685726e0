"""The replay's figures and gates, on small tables of parses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide import replay
from nlu_mlflow.decide.promotion import Check, Decision, PromotionPolicy
from nlu_mlflow.errors import InputError


def parse(intent: str | None, confidence: float = 0.9, entities=()) -> dict:
    return {"intent": {"name": intent, "confidence": confidence}, "entities": list(entities)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", timedelta(days=7)), ("24h", timedelta(hours=24)), (" 2w ", timedelta(weeks=2))],
)
def test_windows(text, expected):
    assert replay.parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "7", "0d", "7 days", "-1d", "7m"])
def test_bad_windows_name_the_fix(text):
    with pytest.raises(InputError, match=r"--live-window: .* e\.g\. 7d"):
        replay.parse_window(text)


def test_traffic_counts_each_text_once_and_digest_ignores_order():
    traffic = replay.traffic_of(["hi", "order pizza", "hi", " ", "hi"])
    assert traffic.texts == ("hi", "order pizza") and traffic.counts == (3, 1) and traffic.messages == 4
    assert traffic.digest() == replay.traffic_of(["order pizza", "hi", "hi", "hi"]).digest()
    assert traffic.digest() != replay.traffic_of(["order pizza", "hi"]).digest()


@pytest.mark.parametrize(
    ("p", "threshold", "expected"),
    [
        (parse("greet", 0.9), 0.3, "greet"),
        (parse("greet", 0.2), 0.3, "nlu_fallback"),  # ranking below the threshold
        (parse("nlu_fallback", 0.7), 0.3, "nlu_fallback"),  # the pipeline's own FallbackClassifier
        (parse(None, 0.0), 0.3, "nlu_fallback"),
    ],
)
def test_answered_intent(p, threshold, expected):
    assert replay.answered_intent(p, threshold) == expected


def test_compare_weights_by_frequency_and_names_critical_flips():
    traffic = replay.traffic_of(["a"] * 6 + ["b"] * 3 + ["c"])  # a:6, b:3, c:1
    production = [parse("greet"), parse("order"), parse("order", 0.1)]
    candidate = [
        parse("greet"),
        parse("cancel"),
        parse("order", 0.95, [{"entity": "size", "start": 0, "end": 1, "value": "c"}]),
    ]
    report = replay.compare(traffic, production, candidate, 0.3, critical_intents={"cancel"}, mask=str.upper)
    assert report.messages == 10 and report.unique == 3
    assert report.agreement_rate == pytest.approx(0.6)  # b (3) and c (1: fallback -> order) flip
    assert report.fallback_rate_production == pytest.approx(0.1) and report.fallback_rate_candidate == 0
    assert report.entity_change_rate == pytest.approx(0.1)
    assert [(f.production, f.candidate, f.count, f.examples, f.critical) for f in report.flips] == [
        ("order", "cancel", 3, ["B"], True),
        ("nlu_fallback", "order", 1, ["C"], False),
    ]
    metrics = report.metrics()
    assert metrics[c.LIVE_FLIP_RATE] == pytest.approx(0.4) and metrics[c.LIVE_CRITICAL_FLIPS] == 3
    assert report.flips_table()["examples"] == ["B", "C"]


def test_examples_are_bounded_and_only_what_mask_returned():
    texts = [f"call me on 555-01{i:02d}" for i in range(10)]
    traffic = replay.traffic_of(texts)
    report = replay.compare(traffic, [parse("a")] * 10, [parse("b")] * 10, 0.3, mask=lambda t: "[PHONE]")  # noqa: ARG005
    (flip,) = report.flips
    assert flip.count == 10 and flip.examples == ["[PHONE]"] * replay.MAX_EXAMPLES


def test_compare_refuses_mismatched_parses():
    with pytest.raises(ValueError, match="every unique text"):
        replay.compare(replay.traffic_of(["a", "b"]), [parse("x")], [parse("x")], 0.3)


def test_empty_window_agrees():
    report = replay.compare(replay.traffic_of([]), [], [], 0.3)
    assert report.messages == 0 and report.agreement_rate == 1.0 and report.flip_rate == 0.0


def _report(flips: int, total: int, fallback_p=0, fallback_c=0) -> replay.ReplayReport:
    texts = [f"t{i}" for i in range(total)]
    production = [parse("x", 0.1 if i < fallback_p else 0.9) for i in range(total)]
    candidate = [parse("y" if i < flips else "x", 0.1 if i < fallback_c else 0.9) for i in range(total)]
    return replay.compare(replay.traffic_of(texts), production, candidate, 0.3)


@pytest.mark.parametrize(
    ("gates", "report", "live", "passed", "words"),
    [
        (
            PromotionPolicy(max_live_flip_rate=0.05, min_live_messages=10),
            _report(1, 100),
            None,
            [True],
            "0.0100 of 100",
        ),
        (
            PromotionPolicy(max_live_flip_rate=0.05, min_live_messages=10),
            _report(10, 100),
            None,
            [False],
            "over by 0.0500",
        ),
        (
            PromotionPolicy(max_live_flip_rate=0.05, min_live_messages=500),
            _report(50, 100),
            None,
            [True],
            "skipped: 100 live messages, fewer than min_live_messages 500",
        ),
        (
            PromotionPolicy(max_live_fallback_increase=0.01, min_live_messages=10),
            _report(0, 100, 0, 5),
            None,
            [False],
            "(+0.0500), may rise at most 0.0100 (over by 0.0400)",
        ),
        (
            PromotionPolicy(min_live_intent_f1=0.8, min_live_messages=10),
            None,
            replay.LiveScore(0.75, 40),
            [False],
            "short by 0.0500",
        ),
        (
            PromotionPolicy(min_live_intent_f1=0.8, min_live_messages=50),
            None,
            replay.LiveScore(0.1, 40),
            [True],
            "skipped: 40 live messages",
        ),
        (PromotionPolicy(min_live_intent_f1=0.8), None, None, [True], "skipped: 0 live messages"),
        (PromotionPolicy(max_live_flip_rate=0.05), None, None, [True], "skipped: no replay of live traffic"),
        (PromotionPolicy(), _report(90, 100), replay.LiveScore(0.1, 400), [], ""),  # all off by default
    ],
)
def test_live_gates(gates, report, live, passed, words):
    checks = replay.live_checks(report.metrics() if report else None, live, gates)
    assert [x.passed for x in checks] == passed
    assert words in " ".join(x.reason for x in checks)


def test_with_live_keeps_every_reason_and_stops_on_a_failed_gate():
    decision = Decision(True, (Check("primary_metric", True, "better"),))
    stopped = replay.with_live(decision, [Check(replay.CHECK_LIVE_FLIPS, False, "too many")])
    assert not stopped.promote and [x.name for x in stopped.checks] == ["primary_metric", "live_flip_rate"]
    assert replay.with_live(decision, []) is decision


def test_live_score_comes_from_the_metrics():
    assert replay.live_score({c.INTENT_F1_WEIGHTED: 0.9}) is None
    score = replay.live_score({c.LIVE_INTENT_F1_WEIGHTED: 0.8, c.LIVE_TEST_EXAMPLES: 40.0})
    assert score == replay.LiveScore(0.8, 40)


def test_the_live_test_share_is_seeded_stable_and_near_the_share():
    keys = [f"message {i}" for i in range(2000)]
    chosen = [k for k in keys if replay.in_live_test(k, 0.2)]
    assert 0.17 < len(chosen) / len(keys) < 0.23
    assert chosen == [k for k in keys if replay.in_live_test(k, 0.2)]  # the same text, the same side
    assert set(chosen) <= {k for k in keys if replay.in_live_test(k, 0.5)}  # a larger share only adds
    assert not any(replay.in_live_test(k, 0.0) for k in keys) and all(
        replay.in_live_test(k, 1.0) for k in keys
    )
