"""Replay of live traffic: what a candidate would answer differently from production (pure).

Both models parse the same window of live user messages (each unique text once, weighted by how often it
was said); this module turns the two lists of parses into figures a team reads before a switch: the
agreement rate, the flips (production intent -> candidate intent, with counts and masked examples), the
fallback rate of each model, entity changes, and which flips touch an intent of the critical suite.
It never sees MLflow or Rasa: parses are Rasa's parse dicts (``intent``, ``intent_ranking``, ``entities``).

Live text is personal data: the report keeps only the examples a ``mask`` function returned, and at most
``MAX_EXAMPLES`` per flip.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from nlu_mlflow import constants as c
from nlu_mlflow.decide.promotion import Check, Decision, PromotionPolicy
from nlu_mlflow.errors import InputError

MAX_EXAMPLES = 3  # masked examples kept per flip
FALLBACK_INTENT = "nlu_fallback"  # what Rasa's FallbackClassifier predicts
_TOLERANCE = 1e-9
_WINDOW = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_window(value: str, source: str = "--live-window") -> timedelta:
    """``7d``, ``24h`` or ``2w`` as a duration; anything else is an InputError naming the fix."""
    match = _WINDOW.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise InputError(
            f"{source}: {value!r} is not a window; write a positive number and a unit, e.g. 7d, 24h or 2w."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Traffic:
    """The window's messages as unique texts, each with how often it was said (input order kept)."""

    texts: tuple[str, ...]
    counts: tuple[int, ...]
    first_id: int | None = None
    last_id: int | None = None

    @property
    def messages(self) -> int:
        return sum(self.counts)

    def digest(self) -> str:
        """A digest of the texts and counts: the same window gives the same digest (no text in it)."""
        sha = hashlib.sha256()
        for text, count in sorted(zip(self.texts, self.counts, strict=True)):
            sha.update(f"{count}\t{text}\n".encode())
        return sha.hexdigest()[:16]


def in_live_test(key: str, share: float, seed: int = 42) -> bool:
    """Whether an annotated live message belongs to the live test set (never trained on): a seeded hash of its
    inbox key, so the same text always lands on the same side, whatever else was annotated."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def traffic_of(texts: Iterable[str], first_id: int | None = None, last_id: int | None = None) -> Traffic:
    """Count the texts: each unique text once, weighted by how often it was said."""
    counts = Counter(t for t in texts if t and t.strip())
    return Traffic(tuple(counts), tuple(counts.values()), first_id, last_id)


def top_intent(parse: dict) -> tuple[str | None, float]:
    intent = parse.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def falls_back(parse: dict, threshold: float) -> bool:
    """Rasa's FallbackClassifier's rule: the top intent is the fallback intent, or its confidence is below
    the threshold (applied to the ranking here when the pipeline has no FallbackClassifier)."""
    name, confidence = top_intent(parse)
    return name == FALLBACK_INTENT or name is None or confidence < threshold


def answered_intent(parse: dict, threshold: float) -> str:
    """The intent the assistant acts on: the fallback intent when it would fall back."""
    return FALLBACK_INTENT if falls_back(parse, threshold) else str(top_intent(parse)[0])


def _entity_set(parse: dict) -> frozenset[tuple]:
    return frozenset(
        (e.get("entity"), e.get("start"), e.get("end"), str(e.get("value")))
        for e in parse.get("entities") or []
    )


@dataclass
class Flip:
    """Messages production answered with one intent and the candidate with another."""

    production: str
    candidate: str
    count: int = 0
    unique: int = 0
    examples: list[str] = field(default_factory=list)
    critical: bool = False


@dataclass(frozen=True)
class ReplayReport:
    messages: int
    unique: int
    agreement_rate: float
    fallback_rate_production: float
    fallback_rate_candidate: float
    entity_change_rate: float
    flips: tuple[Flip, ...]
    confidences_production: tuple[float, ...]  # one per unique text (weights: ``weights``)
    confidences_candidate: tuple[float, ...]
    weights: tuple[int, ...]
    flipped_texts: tuple[int, ...]  # indexes into the traffic's texts where the two differ

    @property
    def flip_rate(self) -> float:
        return 1.0 - self.agreement_rate if self.messages else 0.0

    @property
    def fallback_increase(self) -> float:
        return self.fallback_rate_candidate - self.fallback_rate_production

    def critical_flips(self) -> list[Flip]:
        return [f for f in self.flips if f.critical]

    def metrics(self) -> dict[str, float]:
        """The figures logged on the parent run and as tags of the model version (no text)."""
        return {
            c.LIVE_MESSAGES: float(self.messages),
            c.LIVE_UNIQUE_MESSAGES: float(self.unique),
            c.LIVE_AGREEMENT_RATE: self.agreement_rate,
            c.LIVE_FLIP_RATE: self.flip_rate,
            c.LIVE_FALLBACK_RATE_PRODUCTION: self.fallback_rate_production,
            c.LIVE_FALLBACK_RATE_CANDIDATE: self.fallback_rate_candidate,
            c.LIVE_FALLBACK_INCREASE: self.fallback_increase,
            c.LIVE_ENTITY_CHANGE_RATE: self.entity_change_rate,
            c.LIVE_CRITICAL_FLIPS: float(sum(f.count for f in self.critical_flips())),
        }

    def flips_table(self) -> dict[str, list]:
        """The flips as columns for ``mlflow.log_table`` (masked examples only), most frequent first."""
        return {
            "production_intent": [f.production for f in self.flips],
            "candidate_intent": [f.candidate for f in self.flips],
            "messages": [f.count for f in self.flips],
            "unique_texts": [f.unique for f in self.flips],
            "critical": [f.critical for f in self.flips],
            "examples": [" | ".join(f.examples) for f in self.flips],
        }


def compare(
    traffic: Traffic,
    production: Sequence[dict],
    candidate: Sequence[dict],
    threshold: float,
    critical_intents: Iterable[str] = (),
    mask: Callable[[str], str] = lambda text: text,
) -> ReplayReport:
    """Compare the two models' parses of the same unique texts (in the traffic's order)."""
    if not len(production) == len(candidate) == len(traffic.texts):
        raise ValueError("replay: both models must parse every unique text of the window once")
    critical = set(critical_intents)
    flips: dict[tuple[str, str], Flip] = {}
    agree = fall_p = fall_c = entity_changes = 0
    flipped = []
    for i, (text, count, p, k) in enumerate(
        zip(traffic.texts, traffic.counts, production, candidate, strict=True)
    ):
        before, after = answered_intent(p, threshold), answered_intent(k, threshold)
        fall_p += count * (before == FALLBACK_INTENT)
        fall_c += count * (after == FALLBACK_INTENT)
        entity_changes += count * (_entity_set(p) != _entity_set(k))
        if before == after:
            agree += count
            continue
        flipped.append(i)
        flip = flips.setdefault(
            (before, after), Flip(before, after, critical=bool({before, after} & critical))
        )
        flip.count += count
        flip.unique += 1
        if len(flip.examples) < MAX_EXAMPLES:
            flip.examples.append(mask(text))
    total = traffic.messages
    return ReplayReport(
        messages=total,
        unique=len(traffic.texts),
        agreement_rate=_rate(agree, total, empty=1.0),
        fallback_rate_production=_rate(fall_p, total),
        fallback_rate_candidate=_rate(fall_c, total),
        entity_change_rate=_rate(entity_changes, total),
        flips=tuple(sorted(flips.values(), key=lambda f: (-f.count, f.production, f.candidate))),
        confidences_production=tuple(top_intent(p)[1] for p in production),
        confidences_candidate=tuple(top_intent(k)[1] for k in candidate),
        weights=traffic.counts,
        flipped_texts=tuple(flipped),
    )


def _rate(part: int, total: int, empty: float = 0.0) -> float:
    return part / total if total else empty


# --- gates of the promotion policy on the replay (decide.promotion.PromotionPolicy, all off by default) ---
CHECK_LIVE_FLIPS = c.LIVE_FLIP_RATE
CHECK_LIVE_FALLBACK = c.LIVE_FALLBACK_INCREASE
CHECK_LIVE_F1 = "live_intent_f1"


@dataclass(frozen=True)
class LiveScore:
    """The candidate's intent F1 on the live test set (annotated live messages kept apart from training)."""

    intent_f1_weighted: float
    examples: int


def live_score(metrics: dict[str, float]) -> LiveScore | None:
    """The live test set's score among a model's metrics, None when it was not scored on one."""
    if c.LIVE_INTENT_F1_WEIGHTED not in metrics:
        return None
    return LiveScore(metrics[c.LIVE_INTENT_F1_WEIGHTED], int(metrics.get(c.LIVE_TEST_EXAMPLES, 0)))


def live_checks(
    figures: Mapping[str, float] | None, live: LiveScore | None, gates: PromotionPolicy
) -> list[Check]:
    """One check per gate that is on; a gate with too little traffic is skipped, and says so. ``figures``
    are a replay's (``ReplayReport.metrics()``, or the tags a registered version carries), None: no replay."""
    checks = []
    if gates.max_live_flip_rate is not None:
        checks.append(_gate_flips(figures, gates.max_live_flip_rate, gates))
    if gates.max_live_fallback_increase is not None:
        checks.append(_gate_fallback(figures, gates.max_live_fallback_increase, gates))
    if gates.min_live_intent_f1 is not None:
        checks.append(_gate_f1(live, gates.min_live_intent_f1, gates))
    return checks


def _too_little(name: str, have: int, gates: PromotionPolicy) -> Check | None:
    if have >= gates.min_live_messages:
        return None
    return Check(
        name, True, f"skipped: {have} live messages, fewer than min_live_messages {gates.min_live_messages}"
    )


def _replayed(name: str, figures: Mapping[str, float] | None, gates: PromotionPolicy) -> Check | None:
    if not figures:
        return Check(name, True, "skipped: no replay of live traffic (set live_traffic)")
    return _too_little(name, int(figures[c.LIVE_MESSAGES]), gates)


def _gate_flips(figures: Mapping[str, float] | None, limit: float, gates: PromotionPolicy) -> Check:
    """``limit``: ``gates.max_live_flip_rate``, on."""
    skipped = _replayed(CHECK_LIVE_FLIPS, figures, gates)
    if skipped or figures is None:
        return skipped or Check(CHECK_LIVE_FLIPS, True, "skipped")
    rate, messages = figures[c.LIVE_FLIP_RATE], int(figures[c.LIVE_MESSAGES])
    critical = int(figures.get(c.LIVE_CRITICAL_FLIPS, 0))
    named = f"; {critical} on critical intents" if critical else ""
    reason = f"max_live_flip_rate: {rate:.4f} of {messages} live messages flip, may be at most {limit:.4f}"
    if rate > limit + _TOLERANCE:
        reason += f" (over by {rate - limit:.4f})"
    return Check(CHECK_LIVE_FLIPS, rate <= limit + _TOLERANCE, reason + named)


def _gate_fallback(figures: Mapping[str, float] | None, limit: float, gates: PromotionPolicy) -> Check:
    """``limit``: ``gates.max_live_fallback_increase``, on."""
    skipped = _replayed(CHECK_LIVE_FALLBACK, figures, gates)
    if skipped or figures is None:
        return skipped or Check(CHECK_LIVE_FALLBACK, True, "skipped")
    rise = figures[c.LIVE_FALLBACK_INCREASE]
    reason = (
        f"max_live_fallback_increase: fallback rate {figures[c.LIVE_FALLBACK_RATE_CANDIDATE]:.4f} "
        f"vs production {figures[c.LIVE_FALLBACK_RATE_PRODUCTION]:.4f} "
        f"({rise:+.4f}), may rise at most {limit:.4f}"
    )
    if rise > limit + _TOLERANCE:
        reason += f" (over by {rise - limit:.4f})"
    return Check(CHECK_LIVE_FALLBACK, rise <= limit + _TOLERANCE, reason)


def _gate_f1(live: LiveScore | None, limit: float, gates: PromotionPolicy) -> Check:
    """``limit``: ``gates.min_live_intent_f1``, on."""
    skipped = _too_little(CHECK_LIVE_F1, live.examples if live else 0, gates)
    if skipped or live is None:
        return skipped or Check(CHECK_LIVE_F1, True, "skipped: no live test set")
    f1 = live.intent_f1_weighted
    reason = (
        f"min_live_intent_f1: {c.LIVE_INTENT_F1_WEIGHTED} {f1:.4f} on {live.examples} annotated live messages"
    )
    reason += f", needs >= {limit:.4f}"
    if f1 < limit - _TOLERANCE:
        reason += f" (short by {limit - f1:.4f})"
    return Check(CHECK_LIVE_F1, f1 >= limit - _TOLERANCE, reason)


def with_live(decision: Decision, checks: Sequence[Check]) -> Decision:
    """The decision with the live gates added: promote only when every check, old and new, passed."""
    if not checks:
        return decision
    return Decision(
        decision.promote and all(x.passed for x in checks), decision.checks + tuple(checks), decision.deltas
    )
