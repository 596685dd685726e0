"""Fine-tuning a trained archive: Rasa's own fine-tune path, the check that says why it cannot, and the
fast loader (which replaces Rasa's load for scoring) left out of Rasa's fine-tune load."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import finetune, pipelines, scoring, training
from nlu_mlflow.rasa.data import NluData
from tests.helpers import CONFIGS, PIZZA
from tests.helpers.compare import rasa_test_nlu


def with_examples(data: NluData, *examples: tuple[str, str]) -> NluData:
    extra = TrainingData(training_examples=[Message(data={"text": t, "intent": i}) for t, i in examples])
    return NluData(data.training_data.merge(extra), "merged")


@pytest.fixture(scope="module")
def diet_config() -> pipelines.PipelineConfig:
    return pipelines.load(CONFIGS / "diet.yml", epochs=3, seed=42)  # what conftest's diet_model trained


@pytest.fixture(scope="module")
def grown(pizza_train, pizza_test) -> NluData:
    return NluData(pizza_train.training_data.merge(pizza_test.training_data), "train+test")


@pytest.fixture(scope="module")
def finetuned(diet_model, diet_config, grown, pizza_test, tmp_path_factory):
    """The base is first loaded and scored (fast loader), then fine-tuned in the same process."""
    work = tmp_path_factory.mktemp("finetuned")
    extractors = pipelines.entity_extractors(diet_config)
    base_scores = scoring.score_archive(diet_model.archive, pizza_test, None, extractors, work / "base")
    model = training.train(
        diet_config,
        grown.to_yaml(work / "train.yml"),
        work,
        finetune_from=diet_model.archive,
        epoch_fraction=0.34,
    )
    return base_scores, model


def test_a_model_scored_through_the_fast_loader_fine_tunes(diet_model, diet_config, grown, finetuned):
    assert (
        finetune.finetune_problem(diet_model.archive, diet_config, finetune.config_digest(diet_config), grown)
        is None
    )
    base_scores, model = finetuned
    assert base_scores.metrics[c.INTENT_F1_WEIGHTED] > 0
    assert model.archive.is_file() and model.archive != diet_model.archive
    assert (
        finetune.archive_metadata(model.archive)["model_id"]
        != finetune.archive_metadata(diet_model.archive)["model_id"]
    )


@pytest.mark.slow
def test_fine_tuned_scores_equal_rasa_test_nlu(finetuned, diet_config, pizza_test, tmp_path):
    _, model = finetuned
    scores = scoring.score_archive(
        model.archive, pizza_test, None, pipelines.entity_extractors(diet_config), tmp_path / "ours"
    )
    intent_report, entity_report = rasa_test_nlu(model.archive, PIZZA / "test.yml", tmp_path)
    assert scores.metrics[c.INTENT_F1_WEIGHTED] == pytest.approx(
        intent_report["weighted avg"]["f1-score"], abs=1e-9
    )
    assert scores.metrics[c.ENTITY_F1_WEIGHTED] == pytest.approx(
        entity_report["weighted avg"]["f1-score"], abs=1e-9
    )


def test_a_changed_config_cannot_be_fine_tuned(diet_model, diet_config, grown):
    other = pipelines.load(CONFIGS / "diet.yml", epochs=2, seed=42)
    reason = finetune.finetune_problem(diet_model.archive, other, finetune.config_digest(diet_config), grown)
    assert reason is not None and reason.startswith("config changed")


def test_a_new_intent_cannot_be_fine_tuned(diet_model, diet_config, grown):
    data = with_examples(grown, ("tell me a joke about pizza", "brand_new_intent"))
    reason = finetune.finetune_problem(
        diet_model.archive, diet_config, finetune.config_digest(diet_config), data
    )
    assert reason == "new intents the model cannot take: brand_new_intent"


def test_a_new_entity_cannot_be_fine_tuned(diet_model, diet_config, grown):
    td = grown.training_data.merge(
        TrainingData(
            training_examples=[
                Message(
                    data={
                        "text": "deliver to berlin",
                        "intent": grown.training_data.intent_examples[0].get("intent"),
                        "entities": [{"start": 11, "end": 17, "value": "berlin", "entity": "city_xyz"}],
                    }
                )
            ]
        )
    )
    reason = finetune.finetune_problem(
        diet_model.archive, diet_config, finetune.config_digest(diet_config), NluData(td, "x")
    )
    assert reason == "new entities the model cannot take: city_xyz"


def test_an_archive_from_another_rasa_version_cannot_be_fine_tuned(diet_model, diet_config, grown, tmp_path):
    copy = tmp_path / "old.tar.gz"
    with tarfile.open(diet_model.archive, "r:gz") as src, tarfile.open(copy, "w:gz") as dst:
        for member in src.getmembers():
            blob = src.extractfile(member).read() if member.isfile() else None
            if member.name == "metadata.json":
                meta = json.loads(blob)
                meta["rasa_open_source_version"] = "3.0.0"
                blob = json.dumps(meta).encode()
                member.size = len(blob)
            dst.addfile(member, io.BytesIO(blob) if blob is not None else None)
    reason = finetune.finetune_problem(copy, diet_config, finetune.config_digest(diet_config), grown)
    assert reason is not None and "Rasa 3.0.0" in reason


def test_data_delta_counts_added_and_removed_examples(pizza_train, grown):
    assert finetune.data_delta(pizza_train, grown)["removed"] == 0
    assert finetune.data_delta(pizza_train, grown)["added"] > 0
    assert finetune.data_delta(grown, pizza_train) == {
        "added": 0,
        "removed": finetune.data_delta(pizza_train, grown)["added"],
    }
