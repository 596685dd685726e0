"""Parse texts with a loaded Rasa model: the one place that turns texts into Rasa's parse results.

Pipelines the ``batched`` module supports run the whole batch through the model's graph at once (DIET
inference in batches); others go through Rasa's ``MessageProcessor.parse_message``, a coroutine, all texts
inside one event loop, so a batch costs one loop start-up, not one per text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from nlu_mlflow.rasa import aio

TEXT_COLUMN = "text"
OUTPUT_COLUMNS = ("intent", "confidence", "entities", "intent_ranking")
ENTITY_KEYS = ("entity", "value", "start", "end", "confidence", "extractor")


def parse_texts(processor, texts: Sequence[str]) -> list[dict]:
    """Rasa's parse result for each text, in input order, from one event loop.

    When the caller already runs an event loop (Jupyter, an async server), the batch runs in a
    worker thread with its own loop (``aio.run``).
    """
    texts = list(texts)
    if not texts:
        return []
    from nlu_mlflow.rasa import batched

    if batched.unsupported_reason(processor) is None:  # same parses, the whole batch through the graph once
        return batched.parse_texts(processor, texts)
    return aio.run(_parse_all(processor, texts))


async def _parse_all(processor, texts: list[str]) -> list[dict]:
    from rasa.core.channels.channel import UserMessage

    return [await processor.parse_message(UserMessage(text)) for text in texts]


def entity_record(entity: dict) -> dict:
    """An entity as the model's output shows it; ``confidence`` is None for extractors without one."""
    return {
        "entity": entity.get("entity"),
        "value": entity.get("value"),
        "start": entity.get("start"),
        "end": entity.get("end"),
        "confidence": entity.get("confidence_entity"),
        "extractor": entity.get("extractor"),
    }


def _row(parse: dict) -> dict:
    intent = parse.get("intent") or {}
    ranking = [
        {"name": r.get("name"), "confidence": r.get("confidence")} for r in parse.get("intent_ranking", [])
    ]
    return {
        "intent": intent.get("name"),
        "confidence": float(intent.get("confidence") or 0.0),
        "entities": json.dumps([entity_record(e) for e in parse.get("entities", [])], default=str),
        "intent_ranking": json.dumps(ranking, default=str),
    }


def to_frame(parses: Sequence[dict]) -> pd.DataFrame:
    """One row per parse: intent, confidence, entities (JSON list) and intent_ranking (JSON list)."""
    return pd.DataFrame([_row(p) for p in parses], columns=list(OUTPUT_COLUMNS))


def fallback_threshold(processor) -> float | None:
    """The threshold of the model's FallbackClassifier (from its predict schema), None when it has none."""
    from rasa.nlu.classifiers.fallback_classifier import THRESHOLD_KEY, FallbackClassifier

    for node in processor.model_metadata.predict_schema.nodes.values():
        if node.uses is FallbackClassifier:
            return float({**FallbackClassifier.get_default_config(), **node.config}[THRESHOLD_KEY])
    return None
