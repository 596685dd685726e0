"""Every Rasa internal this package relies on, in one list, and the Rasa version it was checked against.

Fast loading (``fast_load``), batched evaluation (``batched``) and the plot helper (``plots``) replace, call
or mimic parts of Rasa that are not its public API. ``INTERNALS`` names each one and what is relied on.
tests/rasa/test_internals.py pins them on the installed Rasa: each exists with the signature listed here
(instance attributes on a loaded model), and every ``rasa`` import and private attribute those modules use
is in this list. The behaviour itself is pinned against Rasa's own paths by tests/rasa/test_fast_load.py
(predictions), test_batched.py (evaluation results) and test_plots.py (drawings).

On any Rasa other than ``RASA_VERSION`` those modules stand aside and Rasa's own (slower) paths run; a
warning says so once per process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

RASA_VERSION = "3.6.21"

logger = logging.getLogger("nlu_mlflow")
_lock = threading.Lock()
_warned = False


@dataclass(frozen=True)
class Internal:
    """``path``: ``"module:Qualified.name"``; ``params``: the parameter names of a callable, as
    ``inspect.signature`` gives them; ``attributes``: private attributes read on an instance."""

    path: str
    used_by: str
    relied_on: str
    params: tuple[str, ...] | None = None
    attributes: tuple[str, ...] = ()


_LOAD = ("model_file_name", "model_data_example", "predict_data_example", "finetune_mode", "args", "kwargs")
_PARSE = ("self", "message", "tracker", "only_output_properties")

INTERNALS = (
    # --- fast_load: models load for prediction without the training step Rasa runs at load time ---
    Internal("rasa.utils.tensorflow.models:RasaModel.load", "fast_load", "classmethod, replaced", _LOAD),
    Internal(
        "rasa.utils.tensorflow.models:RasaModel.run_inference",
        "fast_load, batched",
        "creates the prediction graph's variables; batched runs it on many messages",
        ("self", "model_data", "batch_size", "output_keys_expected"),
    ),
    Internal(
        "rasa.nlu.extractors.crf_entity_extractor:CRFEntityExtractor.train_model",
        "fast_load",
        "classmethod, replaced by a memo: deterministic for the same tokens, config and tag order",
        ("df_train", "config", "crf_order"),
    ),
    Internal("rasa.utils.tensorflow.constants:LEARNING_RATE", "fast_load", "config key of the optimizer"),
    Internal("rasa.utils.tensorflow.constants:RUN_EAGERLY", "fast_load", "config key of compile()"),
    Internal("rasa.core.agent:Agent", "fast_load", "Agent.load(model_path=...) loads an archive"),
    # --- batched: the NLU graph run once over all test messages ---
    Internal(
        "rasa.nlu.test:get_eval_data",
        "batched",
        "calls processor.parse_message once per test example, in order, and reads model_metadata",
        ("processor", "test_data"),
    ),
    Internal("rasa.core.processor:MessageProcessor.parse_message", "batched", "mimicked", _PARSE),
    Internal("rasa.core.processor:MessageProcessor._parse_message_with_graph", "batched", "mimicked", _PARSE),
    Internal("rasa.core.channels.channel:UserMessage", "batched", "the graph's input message"),
    Internal("rasa.engine.constants:PLACEHOLDER_MESSAGE", "batched", "the graph's input node"),
    Internal(
        "rasa.engine.runner.dask:DaskGraphRunner",
        "batched",
        "its schema, execution context and instantiated nodes",
        attributes=("_graph_schema", "_execution_context", "_instantiated_nodes"),
    ),
    Internal(
        "rasa.engine.graph:GraphSchema.minimal_graph_schema", "batched", "the NLU nodes", ("self", "targets")
    ),
    Internal(
        "rasa.engine.graph:GraphNode.__call__",
        "batched",
        "runs one node on (name, value) inputs; its component and hooks are read",
        ("self", "inputs_from_previous_nodes"),
        attributes=("_component", "_hooks"),
    ),
    Internal(
        "rasa.graph_components.converters.nlu_message_converter:NLUMessageConverter",
        "batched",
        "convert_user_message on a list",
    ),
    *(
        Internal(f"rasa.nlu.{module}:{name}", "batched", "process(messages) on a list equals one by one")
        for module, name in (
            ("tokenizers.whitespace_tokenizer", "WhitespaceTokenizer"),
            ("featurizers.sparse_featurizer.regex_featurizer", "RegexFeaturizer"),
            ("featurizers.sparse_featurizer.lexical_syntactic_featurizer", "LexicalSyntacticFeaturizer"),
            ("classifiers.logistic_regression_classifier", "LogisticRegressionClassifier"),
            ("extractors.entity_synonyms", "EntitySynonymMapper"),
            ("classifiers.fallback_classifier", "FallbackClassifier"),
            ("classifiers.regex_message_handler", "RegexMessageHandler"),
        )
    ),
    Internal(
        "rasa.nlu.extractors.crf_entity_extractor:CRFEntityExtractor",
        "batched",
        "process(messages) on a list equals one by one",
    ),
    Internal(
        "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer:CountVectorsFeaturizer",
        "batched",
        "its vectorizers and attributes, featurized in one transform",
        attributes=("_attributes",),
    ),
    Internal(
        "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer:"
        "CountVectorsFeaturizer._get_processed_message_tokens_by_attribute",
        "batched",
        "the tokens a message is featurized from",
        ("self", "message", "attribute"),
    ),
    Internal(
        "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer:CountVectorsFeaturizer._create_features",
        "batched",
        "mimicked with one transform",
        ("self", "attribute", "all_tokens"),
    ),
    Internal(
        "rasa.nlu.constants:DENSE_FEATURIZABLE_ATTRIBUTES", "batched", "attributes with sentence features"
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier",
        "batched",
        "its entity tag specs",
        attributes=("_entity_tag_specs",),
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier._predict",
        "batched",
        "mimicked",
        ("self", "message"),
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier._predict_label",
        "batched",
        "intent and ranking from one message's outputs",
        ("self", "predict_out"),
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier._predict_entities",
        "batched",
        "entities from one message's outputs",
        ("self", "predict_out", "message"),
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier._create_model_data",
        "batched",
        "mimicked with features combined in bulk",
        ("self", "training_data", "label_id_dict", "label_attribute", "training"),
    ),
    Internal(
        "rasa.nlu.classifiers.diet_classifier:DIETClassifier._add_label_features",
        "batched",
        "called with training=False",
        ("self", "model_data", "training_data", "label_attribute", "label_id_dict", "training"),
    ),
    Internal(
        "rasa.shared.nlu.training_data.message:Message._filter_sparse_features",
        "batched",
        "a message's sparse (sequence, sentence) features",
        ("self", "attribute", "featurizers"),
    ),
    Internal(
        "rasa.shared.nlu.training_data.message:Message._combine_features",
        "batched",
        "mimicked: one stack instead of pairwise hstack",
        ("features", "featurizers"),
    ),
    Internal(
        "rasa.shared.nlu.training_data.features:Features",
        "batched",
        "Features(matrix, type, attribute, origin)",
    ),
    Internal("rasa.utils.tensorflow.model_data:RasaModelData", "batched", "the model's input data"),
    Internal("rasa.utils.tensorflow:model_data_utils", "batched", "convert_to_data_format"),
    Internal("rasa.utils.tensorflow.constants:SEQUENCE", "batched", "feature key"),
    Internal("rasa.utils.tensorflow.constants:SEQUENCE_LENGTH", "batched", "feature key"),
    # --- plots: Rasa's drawing functions run in a helper process ---
    Internal(
        "rasa.utils.plotting:plot_confusion_matrix",
        "plots, plot_worker",
        "module attribute, replaced; writes output_file",
        ("confusion_matrix", "classes", "normalize", "title", "color_map", "zmin", "output_file"),
    ),
    Internal(
        "rasa.utils.plotting:plot_paired_histogram",
        "plots, plot_worker",
        "module attribute, replaced; writes output_file",
        (
            "histogram_data",
            "title",
            "output_file",
            "num_bins",
            "colors",
            "axes_label",
            "frame_label",
            "density",
            "x_pad_fraction",
            "y_pad_fraction",
        ),
    ),
)


def installed_rasa() -> str | None:
    """``rasa.__version__`` of the installed Rasa (None without one)."""
    try:
        import rasa
    except ImportError:
        return None
    return rasa.__version__


def verified() -> bool:
    """True on the Rasa the internals were checked against; else False, and a warning once per process."""
    global _warned
    version = installed_rasa()
    if version == RASA_VERSION:
        return True
    with _lock:
        if not _warned:
            _warned = True
            logger.warning(
                "Rasa %s is installed, but nlu-mlflow's fast loading, batched evaluation and plot helper use "
                "Rasa internals checked on Rasa %s only (nlu_mlflow/rasa/internals.py): they are off, and "
                "Rasa's own slower paths run.",
                version,
                RASA_VERSION,
            )
    return False
