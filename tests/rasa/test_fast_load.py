"""``fast_load`` loads models that predict exactly what Rasa's own load predicts.

These tests pin the Rasa internals ``nlu_mlflow.fast_load`` replaces (``RasaModel.load`` and
``CRFEntityExtractor.train_model``): every comparison is against ``Agent.load`` of the same archive,
with exact equality of every parse (intent, ranking, confidences, entities).
"""

from __future__ import annotations

import pytest
import sklearn_crfsuite
from rasa.core.agent import Agent
from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
from rasa.utils.tensorflow.models import RasaModel

from nlu_mlflow.rasa import batched, fast_load, pipelines, training
from nlu_mlflow.rasa import runtime as rasa_runtime
from nlu_mlflow.rasa.data import load_nlu
from tests.helpers import CONFIGS, PIZZA

VOLATILE = ("message_id", "text_tokens")  # a fresh id per parse; Token objects compare by identity


def parses(processor, texts: list[str]) -> list[dict]:
    return [
        {k: v for k, v in parse.items() if k not in VOLATILE}
        for parse in batched.parse_texts(processor, texts)
    ]


def rasa_parses(archive, texts: list[str]) -> list[dict]:
    return parses(Agent.load(model_path=str(archive)).processor, texts)


@pytest.fixture()
def crf_fits(monkeypatch) -> list[int]:
    """Counts CRF trainings (one ``CRF.fit`` per tag level)."""
    calls = []
    fit = sklearn_crfsuite.CRF.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(sklearn_crfsuite.CRF, "fit", counting_fit)
    return calls


def test_diet_predicts_exactly_what_rasas_load_predicts(diet_model, pizza_test):
    texts = [m.get("text") for m in pizza_test.examples]
    expected = rasa_parses(diet_model.archive, texts)
    actual = parses(fast_load.load_processor(diet_model.archive), texts)
    assert actual == expected
    assert any(p["entities"] for p in actual)  # the entity head is restored too, not only intents


def test_crf_predicts_exactly_what_rasas_load_predicts_and_trains_once(logreg_model, pizza_test, crf_fits):
    texts = [m.get("text") for m in pizza_test.examples]
    expected = rasa_parses(logreg_model.archive, texts)
    rasa_fits = len(crf_fits)
    assert rasa_fits >= 1  # Rasa's load retrains the CRF
    with fast_load.enabled():
        first = parses(fast_load.load_processor(logreg_model.archive), texts)
        assert len(crf_fits) == 2 * rasa_fits  # first load in this block: trained like Rasa does
        second = parses(fast_load.load_processor(logreg_model.archive), texts)
        assert len(crf_fits) == 2 * rasa_fits  # same tokens, config and order: reused
    assert first == expected and second == expected
    assert any(p["entities"] for p in first)


@pytest.mark.slow  # trains a model
def test_a_crf_trained_in_the_block_is_reused_by_the_load(tmp_path, pizza_test, crf_fits):
    """The workflow's case: train a candidate, then load it to score it."""
    rasa_runtime.quiet_rasa()
    config = pipelines.load(CONFIGS / "logreg_crf.yml", epochs=1, seed=42)
    train_yaml = load_nlu(PIZZA / "train.yml").to_yaml(tmp_path / "train.yml")
    with fast_load.enabled():
        trained = training.train(config, train_yaml, tmp_path)
        fits_in_training = len(crf_fits)
        processor = fast_load.load_processor(trained.archive)
        assert len(crf_fits) == fits_in_training
    texts = [m.get("text") for m in pizza_test.examples]
    assert parses(processor, texts) == rasa_parses(trained.archive, texts)


def test_rasas_methods_are_back_after_the_block():
    load, train_model = RasaModel.__dict__["load"], CRFEntityExtractor.__dict__["train_model"]
    with fast_load.enabled():
        with fast_load.enabled():
            assert RasaModel.__dict__["load"].__func__ is fast_load._predict_only_load
        assert RasaModel.__dict__["load"].__func__ is fast_load._predict_only_load  # outer still open
    assert RasaModel.__dict__["load"].__func__ is load.__func__
    assert CRFEntityExtractor.__dict__["train_model"].__func__ is train_model.__func__
    assert fast_load._crf_memo == {}
