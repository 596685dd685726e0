"""Score a search trial on its validation split at chosen epochs, from inside one training.

Successive halving asks for a trial's score after a few epochs, then after more. Training every rung from
scratch pays Rasa's fixed cost (building the graph, training the featurizers, tracing DIET, writing and
loading an archive) once per rung; here one training runs and the training hook (``train_hook``) scores the
model at each rung's epochs as it goes: the validation texts go through the featurizers this training just
fitted (the graph runner's nodes that processed the training data, in order) and DIET's current weights, in
batches (``batched``), and Rasa's ``get_eval_data`` and reports turn the parses into the same metrics the
batched evaluation of an archive gives (``evaluation.from_results``). After the last rung, or when the
search prunes the trial, the training stops there (``StopTraining``): a trial writes no archive.

Only pipelines whose prediction is exactly that are scored so (``unsupported_reason``): one DIETClassifier,
before it only the tokenizers and featurizers the batched path runs, after it only components that do not
change what Rasa's evaluation reads. Others train once per rung as before (``workflow/tune/worker.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow.console import library_output
from nlu_mlflow.rasa import aio, batched, evaluation, internals
from nlu_mlflow.rasa.data import NluData
from nlu_mlflow.rasa.train_hook import EpochEnd, Listener, StopTraining, TrainingContext

SCORED = "DIETClassifier"
BEFORE = {"WhitespaceTokenizer", "RegexFeaturizer", "LexicalSyntacticFeaturizer", "CountVectorsFeaturizer"}
# after DIET: the synonym mapper changes entity values (the evaluation compares types and spans), the
# fallback classifier's prediction is undone by get_eval_data, the regex handler acts on "/intent" texts only
AFTER = {"EntitySynonymMapper", "FallbackClassifier"}
PROCESS_TRAINING_DATA = "process_training_data"


def unsupported_reason(pipeline: list[dict]) -> str | None:
    """Why ``pipeline`` (a config's steps) cannot be scored inside its training; None when it can."""
    if not internals.verified():
        return f"Rasa {internals.installed_rasa()} is installed, not {internals.RASA_VERSION}"
    names = [step.get("name") for step in pipeline]
    if names.count(SCORED) != 1:
        return f"the pipeline has {names.count(SCORED)} {SCORED}s, not one"
    at = names.index(SCORED)
    if set(names[:at]) - BEFORE or set(names[at + 1 :]) - AFTER:
        other = sorted((set(names[:at]) - BEFORE) | (set(names[at + 1 :]) - AFTER))
        return f"{', '.join(other)} cannot be scored during training"
    return None


@dataclass
class RungScorer(Listener):
    """At each of ``rungs`` (epochs) scores DIET on ``validation`` and calls ``report(epoch, metrics)``; a
    True answer (prune) or the last rung stops the training."""

    validation: NluData
    extractors: list[str]
    rungs: list[int]
    report: Callable[[int, dict[str, float]], bool]
    out_dir: Path
    stop_at_last: bool = True  # False: train on to the configured epochs (and write the archive)
    scored: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def on_epoch(self, event: EpochEnd, context: TrainingContext) -> None:
        if event.component != SCORED or event.epoch not in self.rungs:
            return
        metrics = score(context, self.validation, self.extractors, self.out_dir / f"epoch-{event.epoch}")
        self.scored.append((event.epoch, metrics))
        if self.report(event.epoch, metrics):
            raise StopTraining(event.epoch, "pruned")
        if self.stop_at_last and event.epoch == self.rungs[-1]:
            raise StopTraining(event.epoch, "last rung scored")


def score(context: TrainingContext, data: NluData, extractors: list[str], out_dir: Path) -> dict[str, float]:
    """The metrics of the model being trained (DIET as it is now) on ``data``."""
    started = time.perf_counter()
    diet = context.component
    messages = _featurized(context, [e.get(batched.TEXT) for e in data.training_data.nlu_examples])
    model, eager = diet.model, diet.model._run_eagerly
    # eagerly, label embeddings from the current weights: a traced prediction would keep the label
    # embeddings of its first call (captured as constants), so a later rung would score with stale ones
    model.prepared_for_prediction, model._run_eagerly = False, True
    try:
        batched.diet_process(diet, messages)
    finally:
        model.prepared_for_prediction, model._run_eagerly = False, eager
    parses = [batched._parse_data(m) for m in messages]
    eval_data = _eval_data(parses, data)
    return evaluation.from_results(eval_data, data, extractors, out_dir, False, started).metrics


def _featurized(context: TrainingContext, texts: list[str]) -> list:
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.shared.nlu.constants import TEXT, TEXT_TOKENS
    from rasa.shared.nlu.training_data.message import Message

    messages = [Message(data={TEXT: t}, output_properties={TEXT_TOKENS}) for t in texts]
    for component in featurizers(context):
        if isinstance(component, CountVectorsFeaturizer):
            messages = batched.count_vectors_process(component, messages)
        else:
            messages = component.process(messages)
    return messages


def featurizers(context: TrainingContext) -> list:
    """The trained tokenizers and featurizers whose output DIET trains on, in the order they ran."""
    if context.runner is None:
        raise RuntimeError("the graph runner training this model was not found: cannot score it now")
    nodes, schema = context.runner._instantiated_nodes, context.runner._graph_schema.nodes
    name = next(n for n, node in nodes.items() if node._component is context.component)
    chain, need = [], schema[name].needs.get("training_data")
    while need in schema and schema[need].fn == PROCESS_TRAINING_DATA:
        chain.append(nodes[need]._component)
        need = schema[need].needs.get("training_data")
    return chain[::-1]


def _eval_data(parses: list[dict], data: NluData) -> tuple:
    from rasa.nlu.test import get_eval_data

    with library_output():  # Rasa's progress bar over the examples
        return aio.run(get_eval_data(batched._ParsedMessages(None, parses), data.training_data))
