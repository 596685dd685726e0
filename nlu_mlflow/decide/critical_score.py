"""Score a model's parses of a critical-utterance suite (pure: parses in, table and metrics out).

``score`` compares Rasa parse results with the suite and returns the per-utterance table plus the
``critical_pass_rate`` / ``critical_failures`` metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from nlu_mlflow.constants import CRITICAL_FAILURES, CRITICAL_PASS_RATE
from nlu_mlflow.decide.critical_suite import CriticalSuite, CriticalUtterance

PREDICTED_ENTITY_KEYS = ("entity", "value", "start", "end", "extractor")
TABLE_COLUMNS = (
    "text",
    "expected_intent",
    "predicted_intent",
    "confidence",
    "expected_entities",
    "predicted_entities",
    "passed",
    "reason",
)


@dataclass(frozen=True, eq=False)  # eq=False: a DataFrame field cannot be compared or hashed as a tuple
class CriticalResult:
    table: pd.DataFrame  # one row per utterance, TABLE_COLUMNS
    pass_rate: float
    failures: int

    def metrics(self) -> dict[str, float]:
        return {CRITICAL_PASS_RATE: self.pass_rate, CRITICAL_FAILURES: float(self.failures)}


def score(suite: CriticalSuite, parses: list[dict]) -> CriticalResult:
    """Compare Rasa parse results (``processor.parse_message`` output, aligned with
    ``suite.utterances``) with the suite's expectations."""
    if len(parses) != len(suite.utterances):
        raise ValueError(
            f"{suite.path}: got {len(parses)} parse results for {len(suite.utterances)} utterances."
        )
    rows = [score_row(u, p) for u, p in zip(suite.utterances, parses, strict=True)]
    table = pd.DataFrame(rows, columns=pd.Index(TABLE_COLUMNS)).astype({"confidence": float, "passed": bool})
    failures = int((~table["passed"]).sum())
    pass_rate = float(table["passed"].mean()) if len(table) else 1.0
    return CriticalResult(table, pass_rate, failures)


def score_row(utterance: CriticalUtterance, parse: dict) -> dict:
    """One table row: what was expected, what Rasa predicted, and why it failed ("" when it passed)."""
    intent, confidence = predicted_intent(parse)
    entities = list(parse.get("entities") or [])
    reasons = failure_reasons(utterance, intent, confidence, entities)
    return {
        "text": utterance.text,
        "expected_intent": utterance.intent,
        "predicted_intent": intent,
        "confidence": confidence,
        "expected_entities": json.dumps([{"entity": e, "value": v} for e, v in utterance.entities]),
        "predicted_entities": json.dumps([_entity_view(e) for e in entities], default=str),
        "passed": not reasons,
        "reason": "; ".join(reasons),
    }


def predicted_intent(parse: dict) -> tuple[str | None, float]:
    intent = parse.get("intent") or {}
    confidence = intent.get("confidence")
    return intent.get("name"), 0.0 if confidence is None else float(confidence)


def failure_reasons(
    utterance: CriticalUtterance, intent: str | None, confidence: float, entities: list[dict]
) -> list[str]:
    """Why a prediction fails the utterance; empty when it passes.

    The confidence floor is only checked when the intent is right (it is the predicted intent's
    confidence). Every expected entity must be among the predictions; extra predictions are fine.
    """
    reasons = []
    if intent != utterance.intent:
        shown = f"intent '{intent}'" if intent else "no intent"
        reasons.append(f"predicted {shown}, expected '{utterance.intent}'")
    elif utterance.min_confidence is not None and confidence < utterance.min_confidence:
        reasons.append(f"confidence {_below(confidence, utterance.min_confidence)}")
    found = {(e.get("entity"), _normalized(e.get("value"))) for e in entities}
    reasons += [
        f"missing entity {entity}='{value}'"
        for entity, value in utterance.entities
        if (entity, _normalized(value)) not in found
    ]
    return reasons


def _below(confidence: float, floor: float) -> str:
    """'0.21 below 0.50', with more digits where two decimals would show equal numbers."""
    digits = 2
    while digits < 6 and f"{confidence:.{digits}f}" == f"{floor:.{digits}f}":
        digits += 1
    return f"{confidence:.{digits}f} below {floor:.{digits}f}"


def _normalized(value: object) -> str:
    return str(value).strip().lower()


def _entity_view(entity: dict) -> dict:
    return {k: entity[k] for k in PREDICTED_ENTITY_KEYS if k in entity}
