"""A model's scores as they are cached and compared later (pure: plain values in, record out, and back).

One record holds what a promotion decision needs, so a manual ``promote`` weeks later applies the same
gates the workflow applied: the metrics, per-example correctness keyed by example identity (the McNemar
test pairs examples by key, never by position), the per-intent test support (the per-intent guard), and the
digests and time that say what was measured when.
"""

from __future__ import annotations

from collections.abc import Mapping

from nlu_mlflow.decide.promotion import Scores


def record(
    metrics: Mapping[str, float],
    correct: Mapping[str, bool],
    intent_support: Mapping[str, int],
    digests: Mapping[str, str | None],
    scored_at: str,
) -> dict:
    return {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "correct": {k: int(bool(v)) for k, v in correct.items()},
        "intent_support": dict(intent_support),
        "digests": dict(digests),
        "scored_at": scored_at,
    }


def _correct(raw: object) -> dict[str, bool] | None:
    if isinstance(raw, dict):
        return {str(k): bool(v) for k, v in raw.items()}
    return None


def scores(cached: Mapping) -> Scores:
    """The ``Scores`` a decision reads from a cached record."""
    return Scores(cached["metrics"], cached.get("intent_support") or {}, _correct(cached.get("correct")))
