"""Turn Rasa's evaluation reports into MLflow metrics with fixed names (pure functions)."""

from __future__ import annotations

import re

from nlu_mlflow import constants as c

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_key(prefix: str, label: str) -> str:
    """``prefix + label`` with characters MLflow rejects in metric names replaced by ``_``."""
    return prefix + _UNSAFE.sub("_", str(label))


def labels(report: dict) -> list[str]:
    """The per-class entries of an sklearn/Rasa report (no averages)."""
    return [k for k, v in report.items() if k not in c.REPORT_SUMMARY_KEYS and isinstance(v, dict)]


def intent_metrics(report: dict, accuracy: float) -> dict[str, float]:
    """Headline and per-intent metrics from Rasa's ``intent_report.json``."""
    weighted, macro = report[c.WEIGHTED_AVG], report[c.MACRO_AVG]
    metrics = {
        c.INTENT_ACCURACY: accuracy,
        c.INTENT_F1_WEIGHTED: weighted["f1-score"],
        c.INTENT_PRECISION_WEIGHTED: weighted["precision"],
        c.INTENT_RECALL_WEIGHTED: weighted["recall"],
        c.INTENT_F1_MACRO: macro["f1-score"],
    }
    metrics.update({metric_key(c.INTENT_F1_PREFIX, k): report[k]["f1-score"] for k in labels(report)})
    return metrics


def entity_metrics(reports: dict[str, dict], main_extractor: str | None) -> dict[str, float]:
    """Per-extractor weighted scores, and headline plus per-entity F1 of the main extractor.

    ``reports`` maps an extractor name to Rasa's ``<Extractor>_report.json``.
    """
    metrics: dict[str, float] = {}
    for extractor, report in sorted(reports.items()):
        weighted = report.get(c.WEIGHTED_AVG)
        if not weighted:
            continue
        metrics[metric_key(c.EXTRACTOR_F1_PREFIX, extractor)] = weighted["f1-score"]
        metrics[metric_key(c.EXTRACTOR_PRECISION_PREFIX, extractor)] = weighted["precision"]
        metrics[metric_key(c.EXTRACTOR_RECALL_PREFIX, extractor)] = weighted["recall"]
    main = reports.get(main_extractor or "")
    if main and main.get(c.WEIGHTED_AVG):
        weighted = main[c.WEIGHTED_AVG]
        metrics[c.ENTITY_F1_WEIGHTED] = weighted["f1-score"]
        metrics[c.ENTITY_PRECISION_WEIGHTED] = weighted["precision"]
        metrics[c.ENTITY_RECALL_WEIGHTED] = weighted["recall"]
        metrics.update({metric_key(c.ENTITY_F1_PREFIX, k): main[k]["f1-score"] for k in labels(main)})
    return metrics


def main_extractor(pipeline_extractors: list[str], active: set[str]) -> str | None:
    """The first extractor of the pipeline that produced predictions (else the first of the pipeline)."""
    for name in pipeline_extractors:
        if name in active:
            return name
    return pipeline_extractors[0] if pipeline_extractors else None


def response_selection_metrics(report: dict, accuracy: float) -> dict[str, float]:
    """Headline and per-retrieval-intent metrics from Rasa's ``response_selection_report.json``."""
    weighted = report.get(c.WEIGHTED_AVG)
    if not weighted:
        return {}
    metrics = {
        c.RESPONSE_SELECTION_ACCURACY: accuracy,
        c.RESPONSE_SELECTION_F1_WEIGHTED: weighted["f1-score"],
    }
    metrics.update(
        {metric_key(c.RESPONSE_SELECTION_F1_PREFIX, k): report[k]["f1-score"] for k in labels(report)}
    )
    return metrics


def core_metrics(report: dict, action_accuracy: float, actions: set[str] | None = None) -> dict[str, float]:
    """Dialogue metrics from Rasa's ``story_report.json`` (``rasa test core``): conversation accuracy
    (share of test conversations predicted without an error), action accuracy and weighted F1 as Rasa
    computes them (over every label of the conversations), and F1 per action: the report's labels that are
    ``actions`` (Rasa's report also lists the user turns' intents and entities)."""
    metrics = {c.CORE_ACTION_ACCURACY: action_accuracy}
    conversations = report.get(c.CONVERSATION_ACCURACY_KEY)
    if conversations:
        metrics[c.CORE_CONVERSATION_ACCURACY] = conversations["accuracy"]
        metrics[c.CORE_CONVERSATIONS_FAILED] = conversations["total"] - conversations["correct"]
    if report.get(c.WEIGHTED_AVG):
        metrics[c.CORE_ACTION_F1_WEIGHTED] = report[c.WEIGHTED_AVG]["f1-score"]
    names = [k for k in labels(report) if actions is None or k in actions]
    metrics.update({metric_key(c.CORE_ACTION_F1_PREFIX, k): report[k]["f1-score"] for k in names})
    return metrics
