"""Significance of a difference in per-utterance correctness between two models (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping

EXACT_TEST_BELOW = 25  # McNemar: exact binomial when b + c is below this, chi-square otherwise


def discordant_counts(new: Mapping[str, bool], old: Mapping[str, bool]) -> tuple[int, int]:
    """(right only for ``new``, right only for ``old``) over the examples both were scored on, paired by
    example identity (the mapping's key), never by position."""
    pairs = [(new[k], old[k]) for k in new if k in old]
    return sum(1 for x, y in pairs if x and not y), sum(1 for x, y in pairs if y and not x)


def mcnemar_p_value(b: int, c: int) -> float:
    """Two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    Exact binomial (p = 1/2) when ``b + c < 25``, else chi-square (1 dof) with continuity correction.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    if n < EXACT_TEST_BELOW:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
        return min(1.0, 2 * tail)
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    return math.erfc(math.sqrt(statistic / 2))
