"""The batched evaluation path gives exactly Rasa's per-message results.

Every comparison runs Rasa's own ``get_eval_data`` (one ``parse_message`` per example) on the same
loaded model, so these tests also pin the Rasa internals ``nlu_mlflow.batched`` relies on.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml

from nlu_mlflow.rasa import batched, evaluation, pipelines, training
from nlu_mlflow.rasa import runtime as rasa_runtime
from nlu_mlflow.rasa.data import NluData, load_nlu
from tests.helpers import CONFIGS, PIZZA, SHARED_DATASETS
from tests.helpers.compare import differences

TOLERANCE = 1e-6
# batched matrix products round differently from one-message ones; entity confidences drift most
# (measured up to 1.1e-6 on rasa-demo-flat), everything else stays within 1e-6
KEY_TOLERANCES = {"confidence_entity": 1e-5}
FINANCIAL = SHARED_DATASETS / "financial-demo"
# at 2 epochs DIET finds no entity in financial-demo's test set; at 8 it finds ~40 (a few seconds more)
FINANCIAL_EPOCHS = 8
# texts Rasa handles specially: "/intent" shortcuts (RegexMessageHandler), punctuation, one letter
EDGE_YAML = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - /greet
    - !!!
    - a
- intent: purchase
  examples: |
    - /purchase{"size": "large"}
    - two [large](size) [margherita](product) please
"""


def rasa_eval_data(processor, test_data) -> tuple:
    from rasa.nlu.test import get_eval_data

    return asyncio.run(get_eval_data(processor, test_data))


def assert_same_as_rasa(processor, test_data, out_dir: Path) -> tuple:
    """Batched results equal Rasa's per example and in the reports; returns the batched results."""
    assert batched.supports(processor), batched.unsupported_reason(processor)
    expected = rasa_eval_data(processor, test_data)
    actual = batched.get_eval_data(processor, test_data)
    assert differences(expected, actual, TOLERANCE, KEY_TOLERANCES) == []
    assert len(actual[0]) == len(test_data.nlu_examples)
    expected_reports = evaluation.report_contents(expected, out_dir / "rasa")
    actual_reports = evaluation.report_contents(actual, out_dir / "batched")
    assert differences(expected_reports, actual_reports, TOLERANCE, KEY_TOLERANCES) == []
    assert "intent_report.json" in expected_reports
    return actual


def predicted_entities(eval_data: tuple) -> list[dict]:
    return [e for result in eval_data[2] for e in result.entity_predictions]


def train(config: pipelines.PipelineConfig, train_file: Path, work: Path) -> Path:
    rasa_runtime.quiet_rasa()
    train_yaml = load_nlu(train_file).to_yaml(work / "train.yml")
    return training.train(config, train_yaml, work).archive


def config_file(pipeline: list[dict], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"recipe": "default.v1", "language": "en", "pipeline": pipeline}))
    return path


@pytest.fixture(scope="module")
def diet_processor(diet_model):
    return evaluation.load_processor(diet_model.archive)


@pytest.fixture(scope="module")
def logreg_processor(logreg_model):
    return evaluation.load_processor(logreg_model.archive)


@pytest.fixture(scope="module")
def edge_data():
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    return RasaYAMLReader().reads(EDGE_YAML)


@pytest.mark.parametrize(
    ("expected", "actual", "found"),
    [
        ({"a": [1.0, "x"]}, {"a": [1.0 + 5e-7, "x"]}, []),
        ({"a": [1.0, "x"]}, {"a": [1.0 + 2e-6, "x"]}, [".a[0]: 1.0 != 1.000002"]),
        ({"a": [1.0, "x"]}, {"a": [1.0, "y"]}, [".a[1]: 'x' != 'y'"]),
        ({"a": 1}, {"a": 1, "b": 2}, [": keys ['a'] != ['a', 'b']"]),
        ([1, 2], [1], [": list of 2 != list of 1"]),
        ({"a": None}, {"a": 0.0}, [".a: None != 0.0"]),
    ],
)
def test_differences_names_each_mismatch(expected, actual, found):
    assert differences(expected, actual, TOLERANCE) == found


def test_differences_takes_tolerances_per_key():
    expected, actual = {"a": 0.5, "b": {"a": 0.5}}, {"a": 0.500002, "b": {"a": 0.500002}}
    assert differences(expected, actual, 1e-6) == [".a: 0.5 != 0.500002", ".b.a: 0.5 != 0.500002"]
    assert differences(expected, actual, 1e-6, {"a": 1e-5}) == []


def test_differences_names_result_fields():
    from rasa.nlu.test import IntentEvaluationResult

    expected = [IntentEvaluationResult("greet", "greet", "hi", 0.9)]
    actual = [IntentEvaluationResult("greet", "deny", "hi", 0.9)]
    assert differences(expected, actual) == ["[0].intent_prediction: 'greet' != 'deny'"]


@pytest.mark.slow
def test_diet_on_pizza_equals_rasa(diet_processor, pizza_test, tmp_path):
    actual = assert_same_as_rasa(diet_processor, pizza_test.training_data, tmp_path)
    assert {e["extractor"] for e in predicted_entities(actual)} == {"DIETClassifier"}


@pytest.mark.slow
def test_logreg_on_pizza_equals_rasa(logreg_processor, pizza_test, tmp_path):
    actual = assert_same_as_rasa(logreg_processor, pizza_test.training_data, tmp_path)
    assert {e["extractor"] for e in predicted_entities(actual)} == {"CRFEntityExtractor"}


@pytest.mark.slow
@pytest.mark.parametrize("processor", ["diet_processor", "logreg_processor"])
def test_special_texts_equal_rasa(processor, edge_data, request, tmp_path):
    actual = assert_same_as_rasa(request.getfixturevalue(processor), edge_data, tmp_path)
    shortcut = actual[0][3]  # "/purchase{...}": RegexMessageHandler's intent and entity
    assert (shortcut.intent_prediction, shortcut.confidence) == ("purchase", 1.0)
    assert [e["value"] for e in actual[2][3].entity_predictions] == ["large"]


@pytest.mark.slow
def test_parses_equal_parse_message(diet_processor, pizza_test):
    """Whole parse dicts (ranking, tokens, entity confidences) equal ``parse_message``'s."""
    from rasa.core.channels.channel import UserMessage

    texts = [m.get("text") for m in pizza_test.examples]
    expected = [
        asyncio.run(diet_processor.parse_message(UserMessage(text), only_output_properties=False))
        for text in texts
    ]
    actual = batched.parse_texts(diet_processor, texts)
    for parse in expected + actual:
        parse.pop("message_id")  # a fresh uuid per UserMessage
    assert differences(expected, actual, TOLERANCE, KEY_TOLERANCES) == []
    assert all(len(p["intent_ranking"]) > 1 for p in actual)


def matrix_row(matrix) -> tuple:
    """A feature matrix spelled out: format, dtype, shape and entries in stored order."""
    import numpy as np
    import scipy.sparse

    if scipy.sparse.issparse(matrix):
        coo = matrix.tocoo()
        return (
            matrix.format,
            str(matrix.dtype),
            matrix.shape,
            coo.row.tolist(),
            coo.col.tolist(),
            coo.data.tolist(),
        )
    matrix = np.asarray(matrix)
    return ("dense", str(matrix.dtype), matrix.shape, matrix.tolist())


def features_table(message) -> list[tuple]:
    return [(f.type, f.attribute, f.origin, matrix_row(f.features)) for f in message.features]


def model_data_table(model_data) -> dict:
    """DIET's input arrays spelled out, per (key, sub-key)."""
    return {
        (key, sub_key): [
            (array.shape, array.number_of_dimensions, [matrix_row(m) for m in array.reshape(-1)])
            if array.dtype == object
            else (array.shape, array.number_of_dimensions, matrix_row(array))
            for array in arrays
        ]
        for key, sub_keys in model_data.data.items()
        for sub_key, arrays in sub_keys.items()
    }


def rasa_graph_messages(processor, texts: list[str]) -> list:
    """What ``parse_message`` runs: Rasa's graph runner on one message at a time."""
    from rasa.core.channels.channel import UserMessage

    target = processor.model_metadata.nlu_target
    run = processor.graph_runner.run
    return [run(inputs={"__message__": [UserMessage(text)]}, targets=[target])[target][0] for text in texts]


def diet_of(processor):
    nodes = processor.graph_runner._instantiated_nodes.values()
    return next(n._component for n in nodes if type(n._component).__name__ == "DIETClassifier")


@pytest.mark.slow
@pytest.mark.parametrize("processor", ["diet_processor", "logreg_processor"])
def test_graph_messages_equal_rasa_runner(processor, pizza_test, edge_data, request):
    """Pins the graph walk and the bulk count-vector features: same features, same data."""
    processor = request.getfixturevalue(processor)
    texts = [m.get("text") for m in pizza_test.examples + edge_data.nlu_examples]
    expected = rasa_graph_messages(processor, texts)
    actual = batched.run_graph(processor, texts)
    assert [features_table(m) for m in actual] == [features_table(m) for m in expected]
    data = [[{k: v for k, v in m.data.items() if k != "message_id"} for m in ms] for ms in (expected, actual)]
    assert differences(*data, TOLERANCE, KEY_TOLERANCES) == []


@pytest.mark.slow
def test_diet_model_data_equals_rasas(diet_processor, pizza_test, edge_data):
    """Pins DIET's input: ``diet_model_data`` builds ``_create_model_data``'s arrays exactly."""
    diet = diet_of(diet_processor)
    texts = [m.get("text") for m in pizza_test.examples + edge_data.nlu_examples]
    messages = batched.run_graph(diet_processor, texts)
    expected = diet._create_model_data(messages, training=False)
    actual = batched.diet_model_data(diet, messages)
    assert (actual.label_key, actual.label_sub_key) == (expected.label_key, expected.label_sub_key)
    assert actual.sparse_feature_sizes == expected.sparse_feature_sizes
    assert model_data_table(actual) == model_data_table(expected)
    assert ("text", "sequence") in model_data_table(actual)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_diet_outputs_equal_one_message_predictions(diet_processor, pizza_test, batch_size):
    """Pins DIET internals: batched network outputs, cut per example, equal ``DIET._predict``."""
    import numpy as np

    diet = diet_of(diet_processor)
    messages = batched.run_graph(diet_processor, [m.get("text") for m in pizza_test.examples])
    actual = batched.diet_outputs(diet, messages, batch_size)
    for message, out in zip(messages, actual, strict=True):
        one = diet._predict(message)
        assert set(out) == set(one) - {"diagnostic_data"}
        for key, value in out.items():
            assert value.shape == one[key].shape, key
            atol = (
                KEY_TOLERANCES["confidence_entity"]
                if key.endswith("_scores") and key != "i_scores"
                else TOLERANCE
            )
            np.testing.assert_allclose(value, one[key], atol=atol, rtol=0, err_msg=key)


@pytest.fixture(scope="module")
def diet_crf_processor(tmp_path_factory):
    """configs/diet_intents_crf.yml (DIET intents, no transformer; CRF entities) on pizza, 2 epochs."""
    config = pipelines.load(CONFIGS / "diet_intents_crf.yml", epochs=2, seed=42)
    archive = train(config, PIZZA / "train.yml", tmp_path_factory.mktemp("diet_intents_crf"))
    return evaluation.load_processor(archive)


@pytest.mark.slow
def test_diet_intents_crf_on_pizza_equals_rasa(diet_crf_processor, pizza_test, tmp_path):
    actual = assert_same_as_rasa(diet_crf_processor, pizza_test.training_data, tmp_path)
    assert {e["extractor"] for e in predicted_entities(actual)} == {"CRFEntityExtractor"}


@pytest.fixture(scope="module")
def financial_processor(tmp_path_factory):
    """configs/diet.yml plus a FallbackClassifier, trained briefly on the shared financial-demo data."""
    work = tmp_path_factory.mktemp("financial")
    fallback = {"name": "FallbackClassifier", "threshold": 0.5}
    pipeline = [*pipelines.load(CONFIGS / "diet.yml").pipeline, fallback]
    config = pipelines.load(
        config_file(pipeline, work / "diet_fallback.yml"), epochs=FINANCIAL_EPOCHS, seed=42
    )
    return evaluation.load_processor(train(config, FINANCIAL / "train.yml", work))


@pytest.mark.slow
def test_diet_on_financial_demo_equals_rasa(financial_processor, tmp_path):
    test = load_nlu(FINANCIAL / "test.yml")
    actual = assert_same_as_rasa(financial_processor, test.training_data, tmp_path)
    entities = predicted_entities(actual)
    assert {e["extractor"] for e in entities} == {"DIETClassifier"}
    parses = batched.parse_texts(financial_processor, [m.get("text") for m in test.examples])
    fallbacks = [p["intent"]["name"] == "nlu_fallback" for p in parses]
    assert any(fallbacks) and not all(fallbacks)  # Rasa's fallback undo was exercised


@pytest.mark.slow
def test_unsupported_pipeline_falls_back_to_rasa(pizza_test, tmp_path, caplog):
    """A KeywordIntentClassifier is not batched: predict() uses Rasa's per-message path."""
    pipeline = [{"name": "WhitespaceTokenizer"}, {"name": "KeywordIntentClassifier"}]
    config = pipelines.load(config_file(pipeline, tmp_path / "keyword.yml"))
    processor = evaluation.load_processor(train(config, PIZZA / "train.yml", tmp_path))
    assert not batched.supports(processor)
    with pytest.raises(ValueError, match="KeywordIntentClassifier"):
        batched.get_eval_data(processor, pizza_test.training_data)
    with caplog.at_level(logging.INFO, logger="nlu_mlflow.rasa.batched"):
        actual = evaluation.predict(processor, pizza_test)
    assert "per-message path" in caplog.text
    assert differences(rasa_eval_data(processor, pizza_test.training_data), actual, 0.0) == []
    assert any(r.intent_prediction == r.intent_target for r in actual[0])


@pytest.mark.slow
def test_predict_picks_the_batched_path(logreg_processor, pizza_test: NluData, caplog):
    with caplog.at_level(logging.INFO, logger="nlu_mlflow.rasa.batched"):
        actual = evaluation.predict(logreg_processor, pizza_test)
    assert "Batched evaluation path" in caplog.text
    expected = rasa_eval_data(logreg_processor, pizza_test.training_data)
    assert differences(expected, actual, TOLERANCE, KEY_TOLERANCES) == []
