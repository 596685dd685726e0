"""Decide whether a candidate replaces the production model (pure: scores in, decision out).

Never imports MLflow: the caller fetches both sets of scores and acts on the ``Decision``.

The ``promotion:`` section of a workflow YAML file, with its defaults (each value can be
overridden on the command line; ``workflow.schema.Promotion`` checks them and builds the policy)::

    promotion:
      primary_metric: intent_f1_weighted  # the score that must improve
      min_gain: 0.0                # candidate must beat the champion by MORE than this (0.0: any gain)
      max_entity_f1_drop: 0.02     # entity_f1_weighted may fall by at most this much
      allow_entity_loss: false     # true lets a candidate without entity scores replace one that has them
      intent_min_support: 5        # the per-intent guard looks at intents with >= this many test examples
      max_intent_f1_drop: 0.10     # ... none of which may lose more than this much F1
      min_critical_pass_rate: 1.0  # absolute gate on the candidate's critical-utterance suite
      min_conversation_pass_rate: 1.0  # absolute gate on the test conversations (whole assistants only)
      max_core_action_f1_drop: null    # e.g. 0.02: core_action_f1_weighted may fall by at most this much
      significance_alpha: null     # e.g. 0.05 turns on a McNemar test on per-utterance intent correctness
      max_live_flip_rate: null     # e.g. 0.05: at most 5% of last week's live messages may change intent
      max_live_fallback_increase: null  # e.g. 0.01: the live fallback rate may rise by at most this much
      min_live_intent_f1: null     # e.g. 0.85: live_intent_f1_weighted on annotated live messages
      min_live_messages: 200       # below this many live messages a live gate is skipped (never decides)

Every check runs, so a ``Decision`` carries every reason, not only the first failure. With no
champion, the candidate is promoted when it has the primary metric and passes the critical gate.
A champion without the primary metric is never replaced automatically: the two cannot be compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nlu_mlflow import constants as c
from nlu_mlflow.decide.significance import discordant_counts, mcnemar_p_value

# --- defaults of the `promotion:` section ---
DEFAULT_MIN_GAIN = 0.0
DEFAULT_MAX_ENTITY_F1_DROP = 0.02
DEFAULT_ALLOW_ENTITY_LOSS = False
DEFAULT_INTENT_MIN_SUPPORT = 5
DEFAULT_MAX_INTENT_F1_DROP = 0.10
DEFAULT_MIN_CRITICAL_PASS_RATE = 1.0
DEFAULT_MIN_CONVERSATION_PASS_RATE = 1.0
DEFAULT_MAX_CORE_ACTION_F1_DROP: float | None = None
DEFAULT_SIGNIFICANCE_ALPHA: float | None = None
DEFAULT_MIN_LIVE_MESSAGES = 200  # the live gates (decide/replay.py) are off unless set

# --- check names, as they appear in a Decision ---
CHECK_PRIMARY = "primary_metric"
CHECK_ENTITY = "entity_f1"
CHECK_INTENTS = "intent_regression"
CHECK_CRITICAL = c.CRITICAL_PASS_RATE  # the check is named after the metric it reads
CHECK_CONVERSATIONS = "conversation_pass_rate"
CHECK_CORE_ACTIONS = "core_action_f1"
CHECK_SIGNIFICANCE = "significance"

_TOLERANCE = 1e-9  # float noise: 0.91 - 0.90 must count as a gain of exactly 0.01


@dataclass(frozen=True)
class PromotionPolicy:
    """The rules a candidate must pass to replace the champion; see the module docstring. A plain record:
    the workflow file's schema (``workflow.schema.Promotion``) types and range-checks it."""

    primary_metric: str = c.DEFAULT_PRIMARY_METRIC
    min_gain: float = DEFAULT_MIN_GAIN
    max_entity_f1_drop: float = DEFAULT_MAX_ENTITY_F1_DROP
    intent_min_support: int = DEFAULT_INTENT_MIN_SUPPORT
    max_intent_f1_drop: float = DEFAULT_MAX_INTENT_F1_DROP
    min_critical_pass_rate: float = DEFAULT_MIN_CRITICAL_PASS_RATE
    significance_alpha: float | None = DEFAULT_SIGNIFICANCE_ALPHA
    allow_entity_loss: bool = DEFAULT_ALLOW_ENTITY_LOSS
    min_conversation_pass_rate: float = DEFAULT_MIN_CONVERSATION_PASS_RATE
    max_core_action_f1_drop: float | None = DEFAULT_MAX_CORE_ACTION_F1_DROP
    max_live_flip_rate: float | None = None
    max_live_fallback_increase: float | None = None
    min_live_intent_f1: float | None = None
    min_live_messages: int = DEFAULT_MIN_LIVE_MESSAGES

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Scores:
    """One model's results on the test set.

    ``metrics`` uses the names in ``constants`` (per-intent F1 as ``intent_f1/<intent>``);
    ``intent_support`` counts test examples per intent; ``correct`` maps each test example (by its
    identity: content digest, not position) to whether its intent was predicted right (needed only for
    the significance test, which pairs the two models example by example).
    """

    metrics: Mapping[str, float]
    intent_support: Mapping[str, int] = field(default_factory=dict)
    correct: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    """Promote or keep, with every check that led there."""

    promote: bool
    checks: tuple[Check, ...]
    deltas: Mapping[str, float] = field(default_factory=dict)  # metric -> candidate - champion

    @property
    def reasons(self) -> list[str]:
        return [f"{x.name} {'passed' if x.passed else 'FAILED'}: {x.reason}" for x in self.checks]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(x for x in self.checks if not x.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "checks": [dataclasses.asdict(x) for x in self.checks],
            "deltas": dict(self.deltas),
        }


def decide(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Decision:
    """Run every check; promote only when all pass."""
    checks = (
        _check_primary(candidate, champion, policy),
        _check_entity(candidate, champion, policy),
        _check_intents(candidate, champion, policy),
        _check_critical(candidate, policy),
        _check_conversations(candidate, policy),
        _check_core_actions(candidate, champion, policy),
        _check_significance(candidate, champion, policy),
    )
    promote = all(x.passed for x in checks)
    return Decision(promote, checks, _deltas(candidate, champion, policy.primary_metric))


def _deltas(candidate: Scores, champion: Scores | None, primary: str) -> dict[str, float]:
    if champion is None:
        return {}
    names = [primary, c.ENTITY_F1_WEIGHTED]
    names += sorted(n for n in candidate.metrics if n.startswith(c.INTENT_F1_PREFIX))
    both = [n for n in dict.fromkeys(names) if n in candidate.metrics and n in champion.metrics]
    return {n: candidate.metrics[n] - champion.metrics[n] for n in both}


def _check_primary(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Check:
    name = policy.primary_metric
    if name not in candidate.metrics:
        return Check(
            CHECK_PRIMARY, False, f"candidate has no {name} score; log it or choose another primary_metric"
        )
    score = candidate.metrics[name]
    if champion is None:
        return Check(CHECK_PRIMARY, True, f"no champion; candidate {name} {score:.4f}")
    if name not in champion.metrics:
        return Check(CHECK_PRIMARY, False, f"champion has no {name} score, so the two cannot be compared")
    gain = score - champion.metrics[name]
    passed = gain - policy.min_gain > _TOLERANCE
    reason = f"{_versus(name, score, champion.metrics[name])}, needs > {policy.min_gain:+.4f}"
    return Check(CHECK_PRIMARY, passed, reason)


def _check_entity(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Check:
    name = c.ENTITY_F1_WEIGHTED
    if champion is None:
        return Check(CHECK_ENTITY, True, "skipped: no champion to compare with")
    missing = [
        side for side, s in (("candidate", candidate), ("champion", champion)) if name not in s.metrics
    ]
    if missing == ["candidate"]:
        return _entity_loss(policy)
    if missing:
        return Check(CHECK_ENTITY, True, f"skipped: no {name} score for the {' and the '.join(missing)}")
    new, old = candidate.metrics[name], champion.metrics[name]
    passed = old - new <= policy.max_entity_f1_drop + _TOLERANCE
    reason = f"{_versus(name, new, old)}, may drop at most {policy.max_entity_f1_drop:.4f}"
    return Check(CHECK_ENTITY, passed, reason)


def _entity_loss(policy: PromotionPolicy) -> Check:
    """The champion extracts entities and the candidate does not: the worst entity regression."""
    lost = f"candidate has no {c.ENTITY_F1_WEIGHTED} score but the champion has one (entity extraction lost)"
    if policy.allow_entity_loss:
        return Check(CHECK_ENTITY, True, f"{lost}; allowed by allow_entity_loss")
    return Check(CHECK_ENTITY, False, f"{lost}; set promotion.allow_entity_loss: true to allow it")


def _check_intents(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Check:
    if champion is None:
        return Check(CHECK_INTENTS, True, "skipped: no champion to compare with")
    if not candidate.intent_support:
        return Check(CHECK_INTENTS, True, "skipped: no per-intent test support counts given")
    n = policy.intent_min_support
    guarded = sorted(i for i, count in candidate.intent_support.items() if count >= n)
    if not guarded:
        return Check(CHECK_INTENTS, True, f"skipped: no intent has >= {n} test examples")
    problems = _intent_problems(guarded, candidate, champion, policy.max_intent_f1_drop)
    if problems:
        return Check(CHECK_INTENTS, False, "; ".join(problems))
    new = [i for i in guarded if c.INTENT_F1_PREFIX + i not in champion.metrics]
    reason = f"no intent with >= {n} test examples lost more than {policy.max_intent_f1_drop:.4f} F1"
    reason += f" ({len(guarded)} checked)"
    return Check(CHECK_INTENTS, True, reason + (f"; new since champion: {', '.join(new)}" if new else ""))


def _intent_problems(intents: list[str], candidate: Scores, champion: Scores, max_drop: float) -> list[str]:
    """One sentence per guarded intent without a score or that lost too much F1, worst first."""
    keys = [c.INTENT_F1_PREFIX + i for i in intents]
    missing = [f"candidate has no {key} score" for key in keys if key not in candidate.metrics]
    paired = [k for k in keys if k in candidate.metrics and k in champion.metrics]
    deltas = sorted((candidate.metrics[k] - champion.metrics[k], k) for k in paired)
    return missing + [
        _drop_text(k, candidate, champion, max_drop) for d, k in deltas if -d > max_drop + _TOLERANCE
    ]


def _drop_text(key: str, candidate: Scores, champion: Scores, max_drop: float) -> str:
    return f"{_versus(key, candidate.metrics[key], champion.metrics[key])}, may drop at most {max_drop:.4f}"


def _versus(name: str, new: float, old: float) -> str:
    return f"{name} {new:.4f} vs champion {old:.4f} ({new - old:+.4f})"


def _check_critical(candidate: Scores, policy: PromotionPolicy) -> Check:
    rate = candidate.metrics.get(c.CRITICAL_PASS_RATE)
    if rate is None:
        return Check(CHECK_CRITICAL, True, "no critical suite")
    passed = rate >= policy.min_critical_pass_rate - _TOLERANCE
    return Check(
        CHECK_CRITICAL,
        passed,
        f"{c.CRITICAL_PASS_RATE} {rate:.4f}, needs >= {policy.min_critical_pass_rate:.4f}",
    )


def _check_conversations(candidate: Scores, policy: PromotionPolicy) -> Check:
    rate = candidate.metrics.get(c.CORE_CONVERSATION_ACCURACY)
    if rate is None:
        return Check(CHECK_CONVERSATIONS, True, "no test conversations")
    passed = rate >= policy.min_conversation_pass_rate - _TOLERANCE
    failed = candidate.metrics.get(c.CORE_CONVERSATIONS_FAILED)
    failures = f" ({int(failed)} failed)" if failed else ""
    return Check(
        CHECK_CONVERSATIONS,
        passed,
        f"{c.CORE_CONVERSATION_ACCURACY} {rate:.4f}{failures}, "
        f"needs >= {policy.min_conversation_pass_rate:.4f}",
    )


def _check_core_actions(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Check:
    name, allowed = c.CORE_ACTION_F1_WEIGHTED, policy.max_core_action_f1_drop
    if allowed is None:
        return Check(CHECK_CORE_ACTIONS, True, "skipped: max_core_action_f1_drop not set")
    if champion is None or name not in champion.metrics:
        return Check(CHECK_CORE_ACTIONS, True, f"skipped: no champion {name} to compare with")
    if name not in candidate.metrics:
        return Check(
            CHECK_CORE_ACTIONS, False, f"candidate has no {name} (no dialogue model) but the champion has"
        )
    new, old = candidate.metrics[name], champion.metrics[name]
    passed = old - new <= allowed + _TOLERANCE
    return Check(CHECK_CORE_ACTIONS, passed, f"{_versus(name, new, old)}, may drop at most {allowed:.4f}")


def _check_significance(candidate: Scores, champion: Scores | None, policy: PromotionPolicy) -> Check:
    alpha = policy.significance_alpha
    if alpha is None:
        return Check(CHECK_SIGNIFICANCE, True, "skipped: significance_alpha not set")
    if champion is None:
        return Check(CHECK_SIGNIFICANCE, True, "skipped: no champion to compare with")
    new, old = candidate.correct, champion.correct
    problem = _pairing_problem(new, old)
    if problem or new is None or old is None:
        return Check(CHECK_SIGNIFICANCE, False, f"cannot run McNemar's test: {problem}")
    b, c_ = discordant_counts(new, old)  # paired by example, not by position
    p = mcnemar_p_value(b, c_)
    passed = b > c_ and p < alpha
    reason = (
        f"McNemar: candidate right only on {b}, champion right only on {c_}, p={p:.4g}, "
        f"needs candidate ahead and p < {alpha:g}"
    )
    return Check(CHECK_SIGNIFICANCE, passed, reason)


def _pairing_problem(new: Mapping[str, bool] | None, old: Mapping[str, bool] | None) -> str | None:
    if new is None or old is None:
        side = "candidate" if new is None else "champion"
        return f"the {side} has no per-example intent correctness"
    if set(new) != set(old):
        return (
            f"the models were scored on different test examples ({len(new)} vs {len(old)}, "
            f"{len(set(new) ^ set(old))} not in both)"
        )
    return None
