"""Batched NLU evaluation: Rasa's predictions for a whole test set in one pass through the model.

``rasa test nlu`` parses one message at a time (``processor.parse_message`` per example, and
``DIETClassifier.process`` runs the network once per message). Here the model's own prediction
graph runs once over all test messages: every node gets the whole list; the count-vector
featurizers transform all texts in one call, and DIET builds its input for many messages at once,
runs its network over them in batches and post-processes each message with its own helpers.
The parses are then fed to Rasa's ``get_eval_data``, so the evaluation results are built by
Rasa's code, exactly as ``rasa test nlu`` builds them.

The Rasa internals used here (the graph runner's nodes, featurizer and DIET helpers, ``run_inference``)
are listed in ``internals``; tests/rasa/test_batched.py pins their behaviour against Rasa's per-message path.
Only graphs made of components whose batched behaviour was checked run here:
``supports`` says no to anything else, and callers use Rasa's own path for those.

Batched network outputs are not bit-identical to one-message outputs (matrix products of other
shapes round differently): confidences differ by about 1e-7 (entity confidences up to ~1e-6).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from nlu_mlflow.console import library_output
from nlu_mlflow.rasa import aio, internals

logger = logging.getLogger(__name__)

DIET_BATCH_SIZE = 64
CONVERTER_FN = "convert_user_message"
PROCESS_FN = "process"
TEXT = "text"
TEXT_TOKENS = "text_tokens"


def _component_fns() -> dict[type, str]:
    """Components whose list behaviour equals their one-message behaviour, with the graph function."""
    from rasa.graph_components.converters.nlu_message_converter import NLUMessageConverter
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
    from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
    from rasa.nlu.extractors.entity_synonyms import EntitySynonymMapper
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.nlu.featurizers.sparse_featurizer.lexical_syntactic_featurizer import (
        LexicalSyntacticFeaturizer,
    )
    from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    fns = {NLUMessageConverter: CONVERTER_FN}
    for cls in (
        WhitespaceTokenizer,
        RegexFeaturizer,
        LexicalSyntacticFeaturizer,
        CountVectorsFeaturizer,
        LogisticRegressionClassifier,
        DIETClassifier,
        CRFEntityExtractor,
        EntitySynonymMapper,
        FallbackClassifier,
        RegexMessageHandler,
    ):
        fns[cls] = PROCESS_FN
    return fns


def _batched_fns() -> dict[type, object]:
    """Components run by this module's batched version instead of their own ``process``."""
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    return {DIETClassifier: diet_process, CountVectorsFeaturizer: count_vectors_process}


def _nlu_nodes(processor) -> dict:
    """The schema nodes that produce the NLU parse (name -> SchemaNode)."""
    runner = processor.graph_runner
    target = processor.model_metadata.nlu_target
    return runner._graph_schema.minimal_graph_schema([target]).nodes


def unsupported_reason(processor) -> str | None:
    """Why the batched path cannot run this processor's graph; None when it can."""
    if not internals.verified():  # another Rasa: its graph internals may differ
        return f"Rasa {internals.installed_rasa()} is installed, not {internals.RASA_VERSION}"
    from rasa.engine.constants import PLACEHOLDER_MESSAGE
    from rasa.engine.runner.dask import DaskGraphRunner

    if getattr(processor, "http_interpreter", None):
        return "the processor parses through an HTTP interpreter"
    runner = processor.graph_runner
    if type(runner) is not DaskGraphRunner:
        return f"unknown graph runner {type(runner).__name__}"
    if not processor.model_metadata.nlu_target:
        return "the model has no NLU part"
    if runner._execution_context.should_add_diagnostic_data:
        return "the model adds diagnostic data"
    fns = _component_fns()
    nodes = _nlu_nodes(processor)
    for name, node in nodes.items():
        graph_node = runner._instantiated_nodes[name]
        if fns.get(node.uses) != node.fn or type(graph_node._component) is not node.uses:
            return f"component {node.uses.__name__}.{node.fn} (node {name}) is not batched"
        if graph_node._hooks or set(node.needs.values()) - set(nodes) - {PLACEHOLDER_MESSAGE}:
            return f"node {name} has hooks or inputs other than the message"
    return None


def supports(processor) -> bool:
    """True when the batched path gives Rasa's results for this processor (logs why not)."""
    reason = unsupported_reason(processor)
    if reason:
        logger.info("Batched evaluation unavailable (%s): using Rasa's per-message path.", reason)
    return reason is None


def get_eval_data(processor, test_data) -> tuple[list, list, list]:
    """Rasa's ``get_eval_data(processor, test_data)`` results, computed in batches.

    Returns (intent results, response selection results, entity results) as Rasa's
    ``IntentEvaluationResult`` / ``ResponseSelectionEvaluationResult`` / ``EntityEvaluationResult``.
    """
    from rasa.nlu.test import get_eval_data as rasa_get_eval_data

    reason = unsupported_reason(processor)
    if reason:
        raise ValueError(f"batched evaluation cannot run this model: {reason}; use Rasa's get_eval_data.")
    examples = test_data.nlu_examples
    logger.info("Batched evaluation path: parsing %d test examples in one pass.", len(examples))
    parses = parse_texts(processor, [e.get(TEXT) for e in examples])
    with library_output():  # Rasa's progress bar over the test examples
        return aio.run(rasa_get_eval_data(_ParsedMessages(processor.model_metadata, parses), test_data))


def parse_texts(processor, texts: Sequence[str]) -> list[dict]:
    """``processor.parse_message(UserMessage(text), only_output_properties=False)`` for every text."""
    return [_parse_data(m) for m in run_graph(processor, list(texts))]


def _parse_data(message) -> dict:
    """The parse dict of one processed message, as ``MessageProcessor._parse_message_with_graph``."""
    parse = {TEXT: "", "intent": {"name": None, "confidence": 0.0}, "entities": []}
    parse.update(message.as_dict(only_output_properties=False))
    return parse


def run_graph(processor, texts: list[str]) -> list:
    """The processed messages of the NLU graph, run once over all texts."""
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE

    runner = processor.graph_runner
    nodes = _nlu_nodes(processor)
    batched = _batched_fns()
    outputs: dict = {PLACEHOLDER_MESSAGE: [UserMessage(text=t) for t in texts]}

    def run(name: str):
        if name not in outputs:
            needs = {arg: run(dep) for arg, dep in nodes[name].needs.items()}
            graph_node = runner._instantiated_nodes[name]
            if nodes[name].uses in batched:
                outputs[name] = batched[nodes[name].uses](graph_node._component, needs["messages"])
            else:
                outputs[name] = graph_node(*((nodes[name].needs[arg], v) for arg, v in needs.items()))[1]
        return outputs[name]

    return run(processor.model_metadata.nlu_target)


def count_vectors_process(featurizer, messages: list) -> list:
    """``CountVectorsFeaturizer.process(messages)`` with one vectorizer call for all messages."""
    if featurizer.vectorizers is None:
        return featurizer.process(messages)  # logs Rasa's error, adds nothing
    for attribute in featurizer._attributes:
        vectorizer = featurizer.vectorizers.get(attribute)
        if not vectorizer:
            continue
        tokens = [featurizer._get_processed_message_tokens_by_attribute(m, attribute) for m in messages]
        sentences = attribute in _dense_featurizable_attributes()
        features = _count_features(vectorizer, tokens, sentences)
        for message, (sequence, sentence) in zip(messages, features, strict=True):
            featurizer.add_features_to_message(sequence, sentence, attribute, message)
    return messages


def _dense_featurizable_attributes() -> list[str]:
    from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES

    return DENSE_FEATURIZABLE_ATTRIBUTES


def _count_features(vectorizer, all_tokens: list[list[str]], sentences: bool) -> list[tuple]:
    """Per message: (sequence, sentence) count matrices as ``CountVectorsFeaturizer._create_features``.

    One ``transform`` over all tokens (and one over all sentences) gives the same rows as one call
    per message: scikit-learn's count vectorizer featurizes each row on its own.
    """
    present = [i for i, tokens in enumerate(all_tokens) if tokens]
    features: list[tuple] = [(None, None)] * len(all_tokens)
    if not present:
        return features
    sizes = [len(all_tokens[i]) for i in present]
    sequences = _split_rows(vectorizer.transform([t for i in present for t in all_tokens[i]]), sizes)
    sentences_ = [None] * len(present)
    if sentences:
        sentences_ = _split_rows(
            vectorizer.transform([" ".join(all_tokens[i]) for i in present]), [1] * len(present)
        )
    for index, sequence, sentence in zip(present, sequences, sentences_, strict=True):
        features[index] = (sequence, sentence)
    return features


def _split_rows(matrix, sizes: list[int]) -> list:
    """Consecutive row blocks of a CSR matrix as COO matrices, each as ``block.sort_indices(); .tocoo()``."""
    import scipy.sparse

    matrix.sort_indices()
    whole = matrix.tocoo()  # row-major: each block's entries are one consecutive run
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(whole.row, np.concatenate([[0], ends]))
    return [
        scipy.sparse.coo_matrix(
            (whole.data[a:b], (whole.row[a:b] - (end - size), whole.col[a:b])), shape=(size, matrix.shape[1])
        )
        for a, b, end, size in zip(cuts[:-1], cuts[1:], ends, sizes, strict=True)
    ]


def diet_process(diet, messages: list, batch_size: int = DIET_BATCH_SIZE) -> list:
    """``DIETClassifier.process(messages)`` with the network run in batches, not once per message."""
    for message, out in zip(messages, diet_outputs(diet, messages, batch_size), strict=True):
        if diet.component_config["intent_classification"]:
            label, label_ranking = diet._predict_label(out)
            message.set("intent", label, add_to_output=True)
            message.set("intent_ranking", label_ranking, add_to_output=True)
        if diet.component_config["entity_recognition"]:
            message.set("entities", diet._predict_entities(out, message), add_to_output=True)
    return messages


def diet_outputs(diet, messages: list, batch_size: int = DIET_BATCH_SIZE) -> list[dict | None]:
    """What ``diet._predict(message)`` returns for each message (None where DIET predicts nothing)."""
    results: list[dict | None] = [None] * len(messages)
    if diet.model is None:
        return results
    featurizers = diet.component_config.get("featurizers")
    present = [i for i, m in enumerate(messages) if m.features_present(TEXT, featurizers)]
    # shortest first: batches of similar lengths pad less
    present.sort(key=lambda i: len(messages[i].get(TEXT_TOKENS) or []))
    for start in range(0, len(present), batch_size):
        batch = present[start : start + batch_size]
        for index, out in zip(batch, _predict_batch(diet, [messages[i] for i in batch]), strict=True):
            results[index] = out
    return results


def _predict_batch(diet, messages: list) -> list[dict]:
    """DIET's outputs for messages that all have features, one network call for all of them.

    One call per batch: ``run_inference`` cannot concatenate entity outputs of batches padded
    to different lengths.
    """
    model_data = diet_model_data(diet, messages)
    out = diet.model.run_inference(
        model_data, batch_size=len(messages), output_keys_expected=_output_keys(diet)
    )
    lengths = _sequence_lengths(model_data)
    return [
        {key: _example(key, value, row, lengths) for key, value in out.items()}
        for row in range(len(messages))
    ]


def diet_model_data(diet, messages: list):
    """``diet._create_model_data(messages, training=False)``, with features combined in bulk.

    Like Rasa, it leaves out messages without text features.
    """
    from rasa.utils.tensorflow import model_data_utils
    from rasa.utils.tensorflow.constants import SEQUENCE, SEQUENCE_LENGTH
    from rasa.utils.tensorflow.model_data import RasaModelData

    featurizers = diet.component_config.get("featurizers") or []
    messages = [m for m in messages if m.features_present(TEXT, featurizers)]
    if not messages:
        return RasaModelData()
    features = [{TEXT: _text_features(m, featurizers)} for m in messages]
    model_data = RasaModelData(label_key=diet.label_key, label_sub_key=diet.label_sub_key)
    data, _ = model_data_utils.convert_to_data_format(features, consider_dialogue_dimension=False)
    model_data.add_data(data)
    model_data.add_lengths(TEXT, SEQUENCE_LENGTH, TEXT, SEQUENCE)
    sparse = features[0][TEXT] and features[0][TEXT][0].is_sparse()
    sizes = {TEXT: messages[0].get_sparse_feature_sizes(TEXT, featurizers)} if sparse else {}
    model_data.add_sparse_feature_sizes(sizes)
    diet._add_label_features(model_data, messages, None, None, training=False)
    model_data.sort()
    return model_data


def _text_features(message, featurizers: list[str]) -> list:
    """``message.get_all_features("text", featurizers)``: sparse features stacked in one step."""
    sequence, sentence = message._filter_sparse_features(TEXT, featurizers)
    dense = message.get_dense_features(TEXT, featurizers)
    combined = (_combine_sparse(sequence, featurizers), _combine_sparse(sentence, featurizers), *dense)
    return [f for f in combined if f is not None]


def _combine_sparse(features: list, featurizers: list[str]):
    """``Message._combine_features`` for sparse features: one stack instead of pairwise ``hstack``."""
    from rasa.shared.nlu.training_data.features import Features

    if not features:
        return None
    first = features[0]
    matrix = first.features if len(features) == 1 else _hstack([f.features for f in features])
    return Features(matrix, first.type, first.attribute, featurizers)


def _hstack(matrices: list):
    """``scipy.sparse.hstack(matrices)`` (COO, same entry order and dtypes) without its overhead."""
    import scipy.sparse

    blocks = [m if m.format == "coo" else m.tocoo() for m in matrices]
    offsets = np.cumsum([0] + [b.shape[1] for b in blocks])
    data = np.concatenate([b.data for b in blocks]).astype(np.result_type(*[b.dtype for b in blocks]))
    rows = np.concatenate([b.row for b in blocks])
    cols = np.concatenate([b.col + offset for b, offset in zip(blocks, offsets, strict=False)])
    return scipy.sparse.coo_matrix((data, (rows, cols)), shape=(blocks[0].shape[0], offsets[-1]))


def _output_keys(diet) -> list[str]:
    keys = ["i_scores"]
    for spec in diet._entity_tag_specs or []:
        keys += [f"e_{spec.tag_name}_ids", f"e_{spec.tag_name}_scores"]
    return keys


def _sequence_lengths(model_data) -> list[int]:
    """Each example's number of text sequence features (tokens), as DIET counts them."""
    from rasa.utils.tensorflow.constants import SEQUENCE_LENGTH

    lengths = model_data.get(TEXT, SEQUENCE_LENGTH)
    if not lengths:
        return [0] * model_data.number_of_examples()
    return [int(n) for n in np.asarray(lengths[0]).reshape(-1)]


def _example(key: str, value: np.ndarray, row: int, lengths: list[int]) -> np.ndarray:
    """One example's slice of a batched output, shaped as DIET's output for that example alone.

    Entity outputs (``e_*``) hold a position per token plus the sentence position(s) after them,
    padded to the longest example of the batch: cut the padding off.
    """
    one = value[row : row + 1]
    if key.startswith("e_"):
        extra = value.shape[1] - max(lengths)  # positions after the tokens: the sentence feature
        one = one[:, : lengths[row] + extra]
    return one


class _ParsedMessages:
    """Stands in for the processor inside Rasa's ``get_eval_data``: serves parses made in advance.

    ``get_eval_data`` asks for the parse of each test example in order; each answer is the batched
    parse of that example, so Rasa's own code turns them into evaluation results.
    """

    def __init__(self, model_metadata, parses: list[dict]) -> None:
        self.model_metadata = model_metadata
        self._parses = iter(parses)

    # Rasa's MessageProcessor.parse_message signature (get_eval_data calls it); extra arguments unused
    async def parse_message(self, message, tracker=None, only_output_properties=True) -> dict:  # noqa: ARG002
        parse = next(self._parses)
        if parse.get(TEXT) != message.text:
            raise RuntimeError(
                f"batched parse out of order: expected {message.text!r}, got {parse.get(TEXT)!r}"
            )
        return parse
