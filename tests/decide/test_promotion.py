"""The promotion decision: pure tables, no MLflow."""

from __future__ import annotations

import json

import pytest

from nlu_mlflow.decide import promotion
from nlu_mlflow.decide.promotion import Decision, PromotionPolicy, Scores, decide
from nlu_mlflow.decide.significance import mcnemar_p_value

PRIMARY = "intent_f1_weighted"
ENTITY = "entity_f1_weighted"
CRITICAL = "critical_pass_rate"
DEFAULT = PromotionPolicy()
CHAMPION = Scores({PRIMARY: 0.90, ENTITY: 0.80})


def scores(metrics: dict[str, float], support: dict[str, int] | None = None, correct=None) -> Scores:
    """``correct`` in example order becomes a map keyed by example (``ex0``, ``ex1``, ...)."""
    keyed = None if correct is None else {f"ex{i}": bool(x) for i, x in enumerate(correct)}
    return Scores(metrics, support or {}, keyed)


def paired(b: int, c: int, both_right: int = 20, both_wrong: int = 3) -> tuple[tuple[bool, ...], ...]:
    """Per-example correctness of (candidate, champion) with b and c discordant examples."""
    rows = [(True, False)] * b + [(False, True)] * c + [(True, True)] * both_right
    rows += [(False, False)] * both_wrong
    return tuple(x for x, _ in rows), tuple(y for _, y in rows)


def with_intents(f1: dict[str, float], **extra: float) -> dict[str, float]:
    return {PRIMARY: 0.91, ENTITY: 0.80, **{f"intent_f1/{k}": v for k, v in f1.items()}, **extra}


SUPPORT = {"greet": 10, "goodbye": 2}
INTENT_CHAMPION = scores(with_intents({"greet": 0.90, "goodbye": 0.90}, **{PRIMARY: 0.90}))

# (candidate, champion, policy, promote, names of the failed checks)
DECISIONS = [
    pytest.param(scores({PRIMARY: 0.5}), None, DEFAULT, True, (), id="no-champion-promotes"),
    pytest.param(
        scores({PRIMARY: 0.9, CRITICAL: 0.95}),
        None,
        DEFAULT,
        False,
        ("critical_pass_rate",),
        id="no-champion-critical-fails",
    ),
    pytest.param(
        scores({"intent_accuracy": 0.9}),
        None,
        DEFAULT,
        False,
        ("primary_metric",),
        id="no-champion-no-primary",
    ),
    pytest.param(
        scores({PRIMARY: 0.90, ENTITY: 0.80}), CHAMPION, DEFAULT, False, ("primary_metric",), id="equal-keeps"
    ),
    pytest.param(
        scores({PRIMARY: 0.8999, ENTITY: 0.80}),
        CHAMPION,
        DEFAULT,
        False,
        ("primary_metric",),
        id="worse-keeps",
    ),
    pytest.param(
        scores({PRIMARY: 0.9001, ENTITY: 0.80}), CHAMPION, DEFAULT, True, (), id="any-gain-promotes"
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.80}),
        CHAMPION,
        PromotionPolicy(min_gain=0.01),
        False,
        ("primary_metric",),
        id="gain-equal-to-min-gain-keeps",
    ),
    pytest.param(
        scores({PRIMARY: 0.9101, ENTITY: 0.80}),
        CHAMPION,
        PromotionPolicy(min_gain=0.01),
        True,
        (),
        id="gain-above-min-gain",
    ),
    pytest.param(
        scores({PRIMARY: 0.95}),
        scores({"intent_accuracy": 0.9}),
        DEFAULT,
        False,
        ("primary_metric",),
        id="champion-no-primary",
    ),
    pytest.param(scores({PRIMARY: 0.91, ENTITY: 0.79}), CHAMPION, DEFAULT, True, (), id="entity-drop-within"),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.78}), CHAMPION, DEFAULT, True, (), id="entity-drop-at-limit"
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.77}),
        CHAMPION,
        DEFAULT,
        False,
        ("entity_f1",),
        id="entity-drop-beyond",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.70}),
        CHAMPION,
        PromotionPolicy(max_entity_f1_drop=0.2),
        True,
        (),
        id="entity-drop-custom-limit",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}), CHAMPION, DEFAULT, False, ("entity_f1",), id="entity-missing-candidate"
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        CHAMPION,
        PromotionPolicy(allow_entity_loss=True),
        True,
        (),
        id="entity-missing-candidate-allowed",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.1}),
        scores({PRIMARY: 0.9}),
        DEFAULT,
        True,
        (),
        id="entity-missing-champion",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.85, "goodbye": 0.10}), SUPPORT),
        INTENT_CHAMPION,
        DEFAULT,
        True,
        (),
        id="intent-below-support-ignored",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.75, "goodbye": 0.90}), SUPPORT),
        INTENT_CHAMPION,
        DEFAULT,
        False,
        ("intent_regression",),
        id="intent-regressed-keeps",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.80, "goodbye": 0.90}), SUPPORT),
        INTENT_CHAMPION,
        DEFAULT,
        True,
        (),
        id="intent-drop-at-limit",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.99, "goodbye": 0.95}), SUPPORT),
        INTENT_CHAMPION,
        DEFAULT,
        True,
        (),
        id="intent-improved",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.5}), {"greet": 5}),
        INTENT_CHAMPION,
        DEFAULT,
        False,
        ("intent_regression",),
        id="intent-at-min-support-guarded",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.5}), {"greet": 4}),
        INTENT_CHAMPION,
        DEFAULT,
        True,
        (),
        id="intent-below-min-support",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.5}), {"greet": 4}),
        INTENT_CHAMPION,
        PromotionPolicy(intent_min_support=3),
        False,
        ("intent_regression",),
        id="intent-custom-min-support",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.90, "order": 0.10}), {"greet": 10, "order": 10}),
        INTENT_CHAMPION,
        DEFAULT,
        True,
        (),
        id="intent-missing-from-champion",
    ),
    pytest.param(
        scores(with_intents({"goodbye": 0.9}), {"greet": 10}),
        INTENT_CHAMPION,
        DEFAULT,
        False,
        ("intent_regression",),
        id="intent-missing-from-candidate",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.80, CRITICAL: 0.99}),
        CHAMPION,
        DEFAULT,
        False,
        ("critical_pass_rate",),
        id="critical-below",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.80, CRITICAL: 1.0}),
        CHAMPION,
        DEFAULT,
        True,
        (),
        id="critical-all-pass",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.80, CRITICAL: 0.96}),
        CHAMPION,
        PromotionPolicy(min_critical_pass_rate=0.95),
        True,
        (),
        id="critical-custom-threshold",
    ),
    pytest.param(
        scores({PRIMARY: 0.90, ENTITY: 0.5, CRITICAL: 0.5}),
        CHAMPION,
        DEFAULT,
        False,
        ("primary_metric", "entity_f1", "critical_pass_rate"),
        id="every-failure-recorded",
    ),
]


@pytest.mark.parametrize("candidate, champion, policy, promote, failed", DECISIONS)
def test_decide(candidate, champion, policy, promote, failed):
    decision = decide(candidate, champion, policy)
    assert decision.promote is promote
    assert tuple(x.name for x in decision.failed) == failed
    assert len(decision.checks) == 7


# (candidate, champion, policy, check name, text its reason must contain)
REASONS = [
    pytest.param(
        scores({PRIMARY: 0.912}),
        scores({PRIMARY: 0.9}),
        DEFAULT,
        "primary_metric",
        "intent_f1_weighted 0.9120 vs champion 0.9000 (+0.0120), needs > +0.0000",
        id="primary",
    ),
    pytest.param(
        scores({PRIMARY: 0.9}),
        None,
        DEFAULT,
        "primary_metric",
        "no champion; candidate intent_f1_weighted 0.9000",
        id="no-champion",
    ),
    pytest.param(
        scores({"intent_accuracy": 0.9}),
        None,
        DEFAULT,
        "primary_metric",
        "candidate has no intent_f1_weighted score",
        id="no-primary",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, ENTITY: 0.77}),
        CHAMPION,
        DEFAULT,
        "entity_f1",
        "entity_f1_weighted 0.7700 vs champion 0.8000 (-0.0300), may drop at most 0.0200",
        id="entity-drop",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        CHAMPION,
        DEFAULT,
        "entity_f1",
        "candidate has no entity_f1_weighted score but the champion has one (entity extraction lost); "
        "set promotion.allow_entity_loss: true to allow it",
        id="entity-missing",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        scores({PRIMARY: 0.9}),
        DEFAULT,
        "entity_f1",
        "skipped: no entity_f1_weighted score for the candidate and the champion",
        id="entity-missing-both",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.75}), SUPPORT),
        INTENT_CHAMPION,
        DEFAULT,
        "intent_regression",
        "intent_f1/greet 0.7500 vs champion 0.9000 (-0.1500), may drop at most 0.1000",
        id="intent-regressed",
    ),
    pytest.param(
        scores(with_intents({"greet": 0.90, "order": 0.5}), {"greet": 10, "order": 10}),
        INTENT_CHAMPION,
        DEFAULT,
        "intent_regression",
        "(2 checked); new since champion: order",
        id="intent-new",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        CHAMPION,
        DEFAULT,
        "intent_regression",
        "skipped: no per-intent test support counts given",
        id="intent-no-support",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        CHAMPION,
        DEFAULT,
        "critical_pass_rate",
        "no critical suite",
        id="critical-none",
    ),
    pytest.param(
        scores({PRIMARY: 0.91, CRITICAL: 0.9}),
        CHAMPION,
        DEFAULT,
        "critical_pass_rate",
        "critical_pass_rate 0.9000, needs >= 1.0000",
        id="critical-below",
    ),
    pytest.param(
        scores({PRIMARY: 0.91}),
        CHAMPION,
        DEFAULT,
        "significance",
        "skipped: significance_alpha not set",
        id="significance-off",
    ),
]


@pytest.mark.parametrize("candidate, champion, policy, name, text", REASONS)
def test_reason_text(candidate, champion, policy, name, text):
    check = next(x for x in decide(candidate, champion, policy).checks if x.name == name)
    assert text in check.reason


def test_intent_regressions_listed_worst_first():
    candidate = scores(with_intents({"a": 0.7, "b": 0.2, "c": 0.6}), {"a": 9, "b": 9, "c": 9})
    champion = scores(with_intents({"a": 0.9, "b": 0.9, "c": 0.9}, **{PRIMARY: 0.90}))
    (check,) = decide(candidate, champion, DEFAULT).failed
    assert [part.split()[0] for part in check.reason.split("; ")] == [
        "intent_f1/b",
        "intent_f1/c",
        "intent_f1/a",
    ]


ALPHA = PromotionPolicy(significance_alpha=0.05)
GAIN = {PRIMARY: 0.95}

# (candidate correct, champion correct, policy, champion exists, promote, text in the significance reason)
SIGNIFICANCE = [
    pytest.param(*paired(3, 1), DEFAULT, True, True, "significance_alpha not set", id="off-noise-promotes"),
    pytest.param(*paired(10, 0), ALPHA, True, True, "p=0.001953", id="on-clear-gain"),
    pytest.param(*paired(3, 1), ALPHA, True, False, "p=0.625", id="on-gain-within-noise"),
    pytest.param(
        *paired(0, 10),
        ALPHA,
        True,
        False,
        "candidate right only on 0, champion right only on 10",
        id="on-worse",
    ),
    pytest.param(
        *paired(10, 0),
        PromotionPolicy(significance_alpha=0.001),
        True,
        False,
        "p < 0.001",
        id="on-strict-alpha",
    ),
    pytest.param(*paired(30, 10), ALPHA, True, True, "p=0.002663", id="on-chi-square"),
    pytest.param(
        None, paired(10, 0)[1], ALPHA, True, False, "the candidate has no per-example", id="on-no-correctness"
    ),
    pytest.param(
        paired(10, 0)[0],
        paired(10, 0)[1][:-1],
        ALPHA,
        True,
        False,
        "different test examples (33 vs 32",
        id="on-lengths",
    ),
    pytest.param(*paired(0, 0), ALPHA, False, True, "skipped: no champion", id="on-no-champion"),
]


@pytest.mark.parametrize("new, old, policy, has_champion, promote, text", SIGNIFICANCE)
def test_significance(new, old, policy, has_champion, promote, text):
    champion = scores({PRIMARY: 0.90}, correct=old) if has_champion else None
    decision = decide(scores(GAIN, correct=new), champion, policy)
    check = next(x for x in decision.checks if x.name == "significance")
    assert decision.promote is promote
    assert check.passed is promote
    assert text in check.reason


@pytest.mark.parametrize(
    "b, c, expected",
    [
        pytest.param(10, 0, 0.001953125, id="exact-10-0"),
        pytest.param(0, 10, 0.001953125, id="exact-symmetric"),
        pytest.param(5, 5, 1.0, id="exact-tie"),
        pytest.param(3, 1, 0.625, id="exact-3-1"),
        pytest.param(1, 0, 1.0, id="exact-single"),
        pytest.param(0, 0, 1.0, id="no-discordant"),
        pytest.param(20, 4, 0.001543879508972168, id="exact-at-24"),
        pytest.param(21, 4, 0.0013742758758316976, id="chi-square-at-25"),
        pytest.param(30, 10, 0.002663119259138558, id="chi-square-30-10"),
        pytest.param(13, 12, 1.0, id="chi-square-near-tie"),
    ],
)
def test_mcnemar_p_value(b, c, expected):
    assert mcnemar_p_value(b, c) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_p_value(-1, 3)


def test_decision_to_dict_is_json_and_lists_every_reason():
    candidate = scores(with_intents({"greet": 0.7}, **{ENTITY: 0.7, CRITICAL: 0.5}), SUPPORT)
    decision = decide(candidate, INTENT_CHAMPION, ALPHA)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["promote"] is False
    assert len(data["reasons"]) == len(data["checks"]) == 7
    assert [c["name"] for c in data["checks"] if not c["passed"]] == [
        "entity_f1",
        "intent_regression",
        "critical_pass_rate",
        "significance",
    ]
    assert data["reasons"][1].startswith("entity_f1 FAILED: entity_f1_weighted 0.7000")
    assert data["reasons"][0].startswith("primary_metric passed: ")


def test_deltas_cover_primary_entity_and_intents():
    candidate = scores(with_intents({"greet": 0.7, "order": 0.5}, **{ENTITY: 0.75}))
    deltas = decide(candidate, INTENT_CHAMPION, DEFAULT).deltas
    assert deltas == pytest.approx({PRIMARY: 0.01, ENTITY: -0.05, "intent_f1/greet": -0.2})


def test_no_deltas_without_champion():
    assert decide(scores({PRIMARY: 0.9}), None, DEFAULT).deltas == {}


def test_decision_record():
    decision = Decision(False, (promotion.Check("x", False, "why"),))
    assert decision.reasons == ["x FAILED: why"]
    assert decision.failed == decision.checks


def test_significance_pairs_examples_by_identity_not_by_position():
    """Issue 13 item 2: the same examples scored in another order (a merged folder, a remote export) pair
    each example with itself. By position, the reversed champion list would pair the wrong examples."""
    new, old = paired(10, 0)
    keys = [f"text-{i}" for i in range(len(new))]
    candidate = Scores(GAIN, {}, dict(zip(keys, new, strict=True)))
    reordered = Scores({PRIMARY: 0.90}, {}, dict(reversed(list(zip(keys, old, strict=True)))))
    check = next(x for x in decide(candidate, reordered, ALPHA).checks if x.name == "significance")
    assert "candidate right only on 10, champion right only on 0" in check.reason
    assert check.passed


def test_significance_refuses_to_pair_different_examples():
    new, old = paired(10, 0)
    candidate = Scores(GAIN, {}, {f"a{i}": x for i, x in enumerate(new)})
    champion = Scores({PRIMARY: 0.90}, {}, {f"b{i}": x for i, x in enumerate(old)})
    check = next(x for x in decide(candidate, champion, ALPHA).checks if x.name == "significance")
    assert not check.passed and "different test examples" in check.reason


CONVERSATIONS = [
    pytest.param({"core_conversation_accuracy": 1.0}, DEFAULT, True, id="all-pass"),
    pytest.param(
        {"core_conversation_accuracy": 0.75, "core_conversations_failed": 1}, DEFAULT, False, id="one-fails"
    ),
    pytest.param(
        {"core_conversation_accuracy": 0.75},
        PromotionPolicy(min_conversation_pass_rate=0.7),
        True,
        id="lowered",
    ),
    pytest.param({}, DEFAULT, True, id="no-conversations"),
]


@pytest.mark.parametrize("extra, policy, passed", CONVERSATIONS)
def test_test_conversations_are_a_must_pass_gate(extra, policy, passed):
    decision = decide(scores({PRIMARY: 0.95, **extra}), None, policy)
    check = next(x for x in decision.checks if x.name == "conversation_pass_rate")
    assert check.passed is passed and decision.promote is passed


def test_core_action_f1_drop_is_gated_when_set():
    champion = scores({PRIMARY: 0.90, "core_action_f1_weighted": 0.90})
    candidate = scores({PRIMARY: 0.95, "core_action_f1_weighted": 0.80})
    assert decide(candidate, champion, DEFAULT).promote  # off by default
    gated = decide(candidate, champion, PromotionPolicy(max_core_action_f1_drop=0.05))
    check = next(x for x in gated.checks if x.name == "core_action_f1")
    assert not gated.promote and "core_action_f1_weighted 0.8000 vs champion 0.9000" in check.reason
    lost = decide(scores({PRIMARY: 0.95}), champion, PromotionPolicy(max_core_action_f1_drop=0.05))
    assert not lost.promote and "no dialogue model" in lost.checks[5].reason
