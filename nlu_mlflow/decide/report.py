"""The markdown comparison of a candidate with the production model (pure: tables in, text out)."""

from __future__ import annotations

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide import metrics as m

OVERALL = (
    c.INTENT_F1_WEIGHTED,
    c.INTENT_ACCURACY,
    c.INTENT_F1_MACRO,
    c.ENTITY_F1_WEIGHTED,
    c.ENTITY_PRECISION_WEIGHTED,
    c.ENTITY_RECALL_WEIGHTED,
    c.RESPONSE_SELECTION_F1_WEIGHTED,
    c.RESPONSE_SELECTION_ACCURACY,
    c.CORE_CONVERSATION_ACCURACY,
    c.CORE_ACTION_F1_WEIGHTED,
    c.CORE_ACTION_ACCURACY,
    c.CRITICAL_PASS_RATE,
)
SECTIONS = (  # per-label tables after the intents: (title, metric prefix)
    ("Entity F1 (main extractor)", c.ENTITY_F1_PREFIX),
    ("Response selection F1 (retrieval intents)", c.RESPONSE_SELECTION_F1_PREFIX),
    ("Dialogue: action F1 on the test conversations", c.CORE_ACTION_F1_PREFIX),
)


def _fmt(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.4f}"


def _delta(candidate: float | None, champion: float | None) -> str:
    if candidate is None or champion is None:
        return "–"
    return f"{candidate - champion:+.4f}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def compare_table(
    candidate: dict, champion: dict | None, names: list[str], support: dict | None = None
) -> list[str]:
    champion = champion or {}
    header = (
        ["", "support", "candidate", "production", "delta"]
        if support
        else ["", "candidate", "production", "delta"]
    )
    rows = []
    for name in names:
        row = [f"`{name}`"] + ([str(support.get(name, 0))] if support else [])
        row += [
            _fmt(candidate.get(name)),
            _fmt(champion.get(name)),
            _delta(candidate.get(name), champion.get(name)),
        ]
        rows.append(row)
    return _markdown_table(header, rows)


def _labels(prefix: str, *score_sets: dict | None) -> list[str]:
    return sorted({k.removeprefix(prefix) for s in score_sets if s for k in s if k.startswith(prefix)})


def _prefixed(scores: dict | None, prefix: str) -> dict:
    return {k.removeprefix(prefix): v for k, v in (scores or {}).items() if k.startswith(prefix)}


def failures_table(table: pd.DataFrame | None) -> list[str]:
    if table is None:
        return ["No critical suite."]
    if table.empty or bool(table["passed"].all()):
        return ["All critical utterances pass."]
    failed = table[~table["passed"]]
    rows = [
        [r["text"], r["expected_intent"], str(r["predicted_intent"]), r["reason"]]
        for _, r in failed.iterrows()
    ]
    return _markdown_table(["text", "expected", "predicted", "reason"], rows)


def comparison_markdown(
    title: str,
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    decision_lines: list[str],
    intent_support: dict[str, int],
    candidate_critical: pd.DataFrame | None = None,
    champion_critical: pd.DataFrame | None = None,
) -> str:
    """Candidate vs production: decision, overall, per intent, per entity, critical failures."""
    lines = [f"# {title}", ""] + [f"- {line}" for line in decision_lines] + ["", "## Overall", ""]
    lines += compare_table(
        candidate, champion, [k for k in OVERALL if k in candidate or k in (champion or {})]
    )
    intents = _labels(c.INTENT_F1_PREFIX, candidate, champion)
    support = {m.metric_key("", k): v for k, v in intent_support.items()}
    lines += ["", "## Intent F1", ""]
    lines += compare_table(
        _prefixed(candidate, c.INTENT_F1_PREFIX), _prefixed(champion, c.INTENT_F1_PREFIX), intents, support
    )
    for title, prefix in SECTIONS:
        labels = _labels(prefix, candidate, champion)
        if labels:
            lines += ["", f"## {title}", ""]
            lines += compare_table(_prefixed(candidate, prefix), _prefixed(champion, prefix), labels)
    lines += ["", "## Critical utterances: candidate failures", ""] + failures_table(candidate_critical)
    if champion is not None:
        lines += ["", "## Critical utterances: production failures", ""] + failures_table(champion_critical)
    return "\n".join(lines) + "\n"
