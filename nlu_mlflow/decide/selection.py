"""Pick the best candidate of a workflow run (pure: metrics in, decision out)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlu_mlflow import constants as c


@dataclass(frozen=True)
class Selection:
    best: str | None
    reasons: dict[str, str] = field(default_factory=dict)  # candidate -> why it is or is not best


def select_best(
    candidates: dict[str, dict[str, float]],
    primary_metric: str,
    min_critical_pass_rate: float = 1.0,
    min_conversation_pass_rate: float = 1.0,
) -> Selection:
    """Highest ``primary_metric`` among candidates whose critical pass rate is >= ``min_critical_pass_rate``
    and whose test-conversation pass rate (when they have one) is >= ``min_conversation_pass_rate``.

    With the defaults a candidate with one critical failure or one failed test conversation is never
    best, whatever its score; lower rates (the policy's) let through the failures they allow. Ties go to
    the first candidate in name order, so the choice is reproducible.
    """
    reasons: dict[str, str] = {}
    eligible: dict[str, float] = {}
    for name in sorted(candidates):
        scores = candidates[name]
        failures = scores.get(c.CRITICAL_FAILURES, 0)
        conversations = scores.get(c.CORE_CONVERSATION_ACCURACY)
        if primary_metric not in scores:
            reasons[name] = f"has no '{primary_metric}' score"
        elif failures and scores.get(c.CRITICAL_PASS_RATE, 0.0) < min_critical_pass_rate - 1e-9:
            reasons[name] = f"fails {int(failures)} critical utterance(s)"
        elif conversations is not None and conversations < min_conversation_pass_rate - 1e-9:
            failed = int(scores.get(c.CORE_CONVERSATIONS_FAILED, 0))
            reasons[name] = f"fails {failed} test conversation(s) (pass rate {conversations:.4f})"
        else:
            eligible[name] = scores[primary_metric]
    if not eligible:
        return Selection(None, reasons)
    best = max(eligible, key=lambda n: (eligible[n], -sorted(eligible).index(n)))
    for name, score in eligible.items():
        reasons[name] = (
            f"best {primary_metric} = {score:.4f} among candidates passing the critical and "
            "conversation gates"
            if name == best
            else f"{primary_metric} = {score:.4f} < {eligible[best]:.4f} of {best}"
        )
    return Selection(best, reasons)
