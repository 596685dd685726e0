"""Evaluate a trained Rasa model on held-out data with Rasa's own evaluation code.

Predictions come from ``rasa.nlu.test.get_eval_data`` and reports, error files and plots from
``evaluate_intents`` / ``evaluate_entities``, exactly as ``rasa test nlu`` writes them; this module
only adds the fixed metric names and a per-example table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nlu_mlflow.console import library_output
from nlu_mlflow.decide import metrics as m
from nlu_mlflow.rasa import aio
from nlu_mlflow.rasa.data import NluData, example_keys

EXAMPLE_KEY = "example_key"  # the predictions table's column naming each example (``data.example_keys``)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    predictions: pd.DataFrame  # one row per test example
    report_dir: Path  # Rasa's report JSONs, error files and PNGs
    main_extractor: str | None
    seconds: float


def load_agent(archive: Path):
    """Load a model archive like ``rasa test`` does, without its load-time training (``fast_load``)."""
    from nlu_mlflow.rasa import fast_load

    return fast_load.load_agent(archive)


def load_processor(archive: Path):
    return load_agent(archive).processor


def predict(processor, test: NluData) -> tuple[list, list, list]:
    """Rasa's predictions: (intent, response selection, entity) results, batched where supported."""
    from rasa.nlu.test import get_eval_data

    from nlu_mlflow.rasa import batched

    if batched.supports(processor):
        return batched.get_eval_data(processor, test.training_data)
    with library_output():  # Rasa's progress bar over the test examples
        return aio.run(get_eval_data(processor, test.training_data))


def active_extractors(entity_results: list) -> set[str]:
    """The extractors that produced entity predictions (what ``rasa test nlu`` reports on)."""
    return {p.get("extractor") for r in entity_results for p in r.entity_predictions} - {None}


def rasa_reports(
    intent_results: list, entity_results: list, out_dir: Path, plots: bool = True
) -> tuple[dict, dict]:
    """Rasa's ``evaluate_intents`` / ``evaluate_entities``: the intent result and one entity result per
    extractor (reports as dicts); report, success and error JSONs (and PNGs) land in ``out_dir``."""
    from rasa.nlu.test import evaluate_entities, evaluate_intents

    out_dir.mkdir(parents=True, exist_ok=True)
    intents = evaluate_intents(intent_results, str(out_dir), True, True, not plots, report_as_dict=True)
    active = active_extractors(entity_results)
    entities = {}
    if any(entity_results) and active:
        entities = evaluate_entities(
            entity_results, active, str(out_dir), True, True, not plots, report_as_dict=True
        )
    return intents, entities


def response_selection_report(results: list, out_dir: Path, plots: bool = True) -> dict | None:
    """Rasa's ``evaluate_response_selections`` (as ``rasa test nlu`` runs it when a test example has a
    retrieval intent); None when none has."""
    from rasa.nlu.test import evaluate_response_selections

    if not any(r.intent_response_key_target for r in results):
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    return evaluate_response_selections(results, str(out_dir), True, True, not plots, report_as_dict=True)


def report_contents(eval_data: tuple, out_dir: Path) -> dict:
    """Rasa's intent and entity reports (as dicts) plus every JSON file Rasa wrote for them, without
    plots: what two evaluations of the same test set are compared on (``batched.differences``)."""
    intents, _, entities = eval_data
    intent_result, entity_results = rasa_reports(intents, entities, out_dir, plots=False)
    result = {"intents": intent_result, **({"entities": entity_results} if entity_results else {})}
    for path in sorted(out_dir.glob("*.json")):
        result[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return result


def evaluate(
    processor, test: NluData, pipeline_extractors: list[str], out_dir: Path, plots: bool = True
) -> Evaluation:
    """Score ``processor`` on ``test``; reports (with ``plots`` also the PNGs) are written to ``out_dir``."""
    started = time.perf_counter()
    return from_results(predict(processor, test), test, pipeline_extractors, out_dir, plots, started)


def from_results(
    eval_data: tuple,
    test: NluData,
    pipeline_extractors: list[str],
    out_dir: Path,
    plots: bool,
    started: float,
) -> Evaluation:
    """``evaluate`` from Rasa's ``get_eval_data`` results (``predict``, or parses made during training)."""
    intent_results, selection_results, entity_results = eval_data
    intents, entities = rasa_reports(intent_results, entity_results, out_dir, plots)
    main = m.main_extractor(pipeline_extractors, set(entities))
    scores = m.intent_metrics(intents["report"], intents["accuracy"])
    scores.update(m.entity_metrics({k: v["report"] for k, v in entities.items()}, main))
    selection = response_selection_report(selection_results, out_dir)
    if selection:
        scores.update(m.response_selection_metrics(selection["report"], selection["accuracy"]))
    table = predictions_table(intent_results, entity_results, main, selection_results)
    keys = example_keys(test.training_data.nlu_examples)  # the examples get_eval_data went through
    if len(keys) == len(table):
        table.insert(0, EXAMPLE_KEY, keys)
    return Evaluation(scores, table, out_dir, main, time.perf_counter() - started)


def _spans(entities: list[dict], extractor: str | None = None) -> list[dict]:
    keep = [e for e in entities if extractor is None or e.get("extractor") == extractor]
    return sorted(
        (
            {"entity": e["entity"], "value": e.get("value"), "start": e["start"], "end": e["end"]}
            for e in keep
        ),
        key=lambda e: (e["start"], e["end"], e["entity"]),
    )


def predictions_table(
    intent_results: list, entity_results: list, extractor: str | None, selection_results: list = ()
) -> pd.DataFrame:
    """One row per test example: expected vs predicted intent, (main extractor's) entities and, for
    retrieval intents, the response key."""
    rows = []
    selections = {i: r for i, r in enumerate(selection_results) if r.intent_response_key_target}
    for i, result in enumerate(intent_results):
        row = {
            "text": result.message,
            "intent": result.intent_target,
            "predicted_intent": result.intent_prediction,
            "confidence": result.confidence,
            "intent_correct": result.intent_target == result.intent_prediction,
        }
        if i < len(entity_results):
            expected = _spans(entity_results[i].entity_targets)
            predicted = _spans(entity_results[i].entity_predictions, extractor)
            row["entities"] = json.dumps(expected)
            row["predicted_entities"] = json.dumps(predicted)
            key = ("entity", "start", "end")
            row["entities_correct"] = [[e[k] for k in key] for e in expected] == [
                [e[k] for k in key] for e in predicted
            ]
        if i in selections:
            row["response_key"] = selections[i].intent_response_key_target
            row["predicted_response_key"] = selections[i].intent_response_key_prediction
        rows.append(row)
    return pd.DataFrame(rows)
