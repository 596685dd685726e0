"""Fine-tuning a trained archive: Rasa's own fine-tune path (also while the fast loader is on, as in the
workflow), the check that says why it cannot, pinned against the fingerprints Rasa stores and Rasa's own
refusal, for NLU models and whole assistants. (A fine-tuned candidate's scores against `rasa test nlu`:
tests/workflow/test_finetune_run.py.)"""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest
import yaml
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import fast_load, finetune, pipelines, scoring, training
from nlu_mlflow.rasa.data import NluData, load_nlu
from nlu_mlflow.rasa.project import load_project
from tests.helpers import CONFIGS, PIZZA_PROJECT


def with_examples(data: NluData, *examples: dict) -> NluData:
    extra = TrainingData(training_examples=[Message(data=e) for e in examples])
    return NluData(data.training_data.merge(extra), "merged")


@pytest.fixture(scope="module")
def diet_config() -> pipelines.PipelineConfig:
    return pipelines.load(CONFIGS / "diet.yml", epochs=3, seed=42)  # what conftest's diet_model trained


@pytest.fixture(scope="module")
def grown(pizza_train, pizza_test) -> NluData:
    return NluData(pizza_train.training_data.merge(pizza_test.training_data), "train+test")


@pytest.fixture(scope="module")
def grown_yaml(grown, tmp_path_factory):
    return grown.to_yaml(tmp_path_factory.mktemp("grown") / "train.yml")


def problem(archive, config, data: NluData, tmp_path, project=None):
    path = data.to_yaml(tmp_path / "data.yml")
    return finetune.finetune_problem(archive, config, finetune.config_digest(config), path, project, "7")


@pytest.fixture(scope="module")
def finetuned(diet_model, diet_config, grown_yaml, pizza_test, tmp_path_factory):
    """As in the workflow: the base is loaded and scored through the fast loader, then fine-tuned in the same
    process while the fast loader is still on (it must hand the fine-tune load to Rasa's own)."""
    work = tmp_path_factory.mktemp("finetuned")
    extractors = pipelines.entity_extractors(diet_config)
    modes = []
    recorded = fast_load._predict_only_load

    def recording(cls, *args, **kwargs):
        modes.append(bool(kwargs.get("finetune_mode")))
        return recorded(cls, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_load, "_predict_only_load", recording)  # before enabled() installs it
        base_scores = scoring.score_archive(diet_model.archive, pizza_test, None, extractors, work / "base")
        with fast_load.enabled():
            model = training.train(
                diet_config, grown_yaml, work, finetune_from=diet_model.archive, epoch_fraction=0.34
            )
    return base_scores, model, modes


def test_a_model_scored_through_the_fast_loader_fine_tunes(diet_model, diet_config, grown_yaml, finetuned):
    assert (
        finetune.finetune_problem(
            diet_model.archive, diet_config, finetune.config_digest(diet_config), grown_yaml
        )
        is None
    )
    base_scores, model, modes = finetuned
    assert base_scores.metrics[c.INTENT_F1_WEIGHTED] > 0
    assert modes == [False, True]  # scored by the fast loader, then Rasa's load in fine-tune mode
    assert model.archive.is_file() and model.archive != diet_model.archive
    assert (
        finetune.archive_metadata(model.archive)["model_id"]
        != finetune.archive_metadata(diet_model.archive)["model_id"]
    )


def test_todays_fingerprints_are_the_ones_rasa_stored(diet_model, diet_config):
    view = finetune.training_view(diet_config, diet_model.archive.parent / "train.yml")
    assert view.run_type == "nlu"
    assert view.fingerprints == finetune.stored_fingerprints(diet_model.archive) != {}


def test_what_we_call_impossible_rasa_refuses(diet_model, diet_config, grown, tmp_path):
    data = with_examples(grown, {"text": "tell me a joke about pizza", "intent": "brand_new_intent"})
    assert (
        problem(diet_model.archive, diet_config, data, tmp_path)
        == "new intents the model cannot take: brand_new_intent"
    )
    with pytest.raises(Exception) as refused:  # Rasa's graph wraps its FinetuningValidator's exception
        training.train(
            diet_config,
            data.to_yaml(tmp_path / "new.yml"),
            tmp_path / "out",
            finetune_from=diet_model.archive,
        )
    causes = [refused.value, refused.value.__cause__, refused.value.__context__]
    assert any(isinstance(e, InvalidConfigException) and "new labels" in str(e) for e in causes), causes


def test_a_changed_config_cannot_be_fine_tuned(diet_model, diet_config, grown_yaml):
    other = pipelines.load(CONFIGS / "diet.yml", epochs=2, seed=42)
    reason = finetune.finetune_problem(
        diet_model.archive, other, finetune.config_digest(diet_config), grown_yaml
    )
    assert reason.startswith("config changed: diet has config digest")


def test_a_pipeline_without_epoch_training_is_not_fine_tuned(logreg_model, tmp_path, pizza_train):
    config = pipelines.load(CONFIGS / "logreg_crf.yml", epochs=1, seed=42)
    assert finetune.epoch_components(config) == []
    assert problem(logreg_model.archive, config, pizza_train, tmp_path).startswith(
        "logreg_crf has no component Rasa fine-tunes"
    )


def test_a_new_entity_cannot_be_fine_tuned(diet_model, diet_config, grown, tmp_path):
    intent = grown.training_data.intent_examples[0].get("intent")
    entity = {"start": 11, "end": 17, "value": "berlin", "entity": "city_xyz"}
    data = with_examples(grown, {"text": "deliver to berlin", "intent": intent, "entities": [entity]})
    assert (
        problem(diet_model.archive, diet_config, data, tmp_path)
        == "new entities the model cannot take: city_xyz"
    )


def test_a_dropped_intent_cannot_be_fine_tuned(diet_model, diet_config, grown, tmp_path):
    kept = [m for m in grown.training_data.training_examples if m.get("intent") != "greet"]
    reason = problem(diet_model.archive, diet_config, NluData(TrainingData(kept), "x"), tmp_path)
    assert (
        reason.startswith("intents production version 7 knows have no example in today's data")
        and "greet" in reason
    )


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
    assert "Rasa 3.0.0" in problem(copy, diet_config, grown, tmp_path)


def test_data_delta_counts_added_and_removed_examples(pizza_train, grown):
    added = finetune.data_delta(pizza_train, grown)
    assert added.removed == 0 and added.added > 0 and added.base_examples == len(pizza_train.examples)
    assert finetune.data_delta(grown, pizza_train) == finetune.decide.Delta(
        0, added.added, len(grown.examples)
    )


# --- feature sizes: what DIET compares mid-training (issue 27), predicted before training ---

REGEXES = [{"name": "account_number", "pattern": r"\d{10}"}, {"name": "zipcode", "pattern": r"\d{5}"}]
LOOKUP = {"name": "topping", "elements": ["ham", "pineapple", "olives", "mushrooms"]}
SHOUT = {"text": "I want a LARGE pizza NOW", "intent": "purchase"}


def with_patterns(data: NluData, regexes=(), lookups=(), drop=None, extra=()) -> NluData:
    """``data`` (less the examples ``drop`` picks, plus ``extra``) with these regexes and lookup tables."""
    kept = [m for m in data.training_data.training_examples if not (drop and drop(m))]
    training = TrainingData(
        kept + [Message(data=e) for e in extra],
        regex_features=[dict(r) for r in regexes],
        lookup_tables=[{**x, "elements": list(x["elements"])} for x in lookups],
    )
    return NluData(training, "changed")


def rasa_refusal(config, data: NluData, archive, tmp_path) -> str:
    """Rasa's own answer to the fine-tune: the root error's text (it must refuse)."""
    with pytest.raises(Exception) as refused:
        training.train(
            config, data.to_yaml(tmp_path / "rasa.yml"), tmp_path / "out", finetune_from=archive, epoch_fraction=0.34
        )  # fmt: skip
    error = refused.value
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


def test_todays_feature_sizes_are_the_ones_rasa_stored(diet_model, diet_config):
    """The replay of Rasa's fine-tune featurization gives, on the same data, what DIET stored."""
    classifiers, patterns = finetune.feature_facts(
        diet_model.archive, diet_config, diet_model.archive.parent / "train.yml"
    )
    [diet] = classifiers
    assert diet.component == "DIETClassifier" and diet.today == diet.stored
    assert diet.featurizers["text"]["sequence"] == [
        "LexicalSyntacticFeaturizer", "CountVectorsFeaturizer", "CountVectorsFeaturizer"
    ]  # fmt: skip
    assert patterns == [finetune.decide.PatternCount("RegexFeaturizer", 0, 0)]


@pytest.mark.slow
def test_regexes_and_a_lookup_table_appearing_are_predicted_as_rasa_refuses_them(
    diet_model, diet_config, grown, tmp_path
):
    """Issue 27 at small scale: production trained without regexes or lookup tables, today's data has two
    regexes and a lookup table."""
    data = with_patterns(grown, REGEXES, [LOOKUP])
    assert problem(diet_model.archive, diet_config, data, tmp_path).startswith(
        "regex and lookup-table features appear: production version 7 was trained without any "
        "(RegexFeaturizer had no pattern), today's data has 3;"
    )
    assert "Sparse feature sizes have decreased" in rasa_refusal(
        diet_config, data, diet_model.archive, tmp_path
    )


def has_digit(message) -> bool:
    return any(token.isdigit() for token in message.get("text").split())


@pytest.mark.slow
def test_a_lexical_feature_value_gone_is_predicted_as_rasa_refuses_it(
    diet_model, diet_config, grown, tmp_path
):
    """No example has a digit token any more: the LexicalSyntacticFeaturizer, trained afresh, has fewer
    feature values than production's."""
    data = with_patterns(grown, drop=has_digit)
    assert data.training_data.intents == grown.training_data.intents
    assert data.training_data.entities == grown.training_data.entities
    reason = problem(diet_model.archive, diet_config, data, tmp_path)
    assert reason.startswith("LexicalSyntacticFeaturizer's features for 'text' shrink from"), reason
    assert "Sparse feature sizes have decreased" in rasa_refusal(
        diet_config, data, diet_model.archive, tmp_path
    )


SHARED_VOCAB = """
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
    use_shared_vocab: true
  - name: DIETClassifier
    epochs: 1
"""


@pytest.mark.slow
def test_a_shared_vocabulary_that_grows_is_predicted_as_rasa_refuses_it(pizza_train, grown, tmp_path):
    config = pipelines.parse(SHARED_VOCAB, tmp_path / "shared.yml", seed=42)
    base = training.train(config, pizza_train.to_yaml(tmp_path / "base.yml"), tmp_path / "base")
    reason = problem(base.archive, config, grown, tmp_path)
    assert reason.startswith(
        "Rasa cannot featurize today's data for a fine-tune of production version 7: Using a shared vocabulary "
        "in `CountVectorsFeaturizer` is not supported during incremental training"
    ), reason
    assert "Using a shared vocabulary" in rasa_refusal(config, grown, base.archive, tmp_path)


@pytest.fixture(scope="module")
def regex_model(diet_config, pizza_train, tmp_path_factory):
    """Production trained with one regex and a lookup table."""
    work = tmp_path_factory.mktemp("regex-model")
    data = with_patterns(pizza_train, REGEXES[:1], [LOOKUP])
    return training.train(diet_config, data.to_yaml(work / "train.yml"), work)


@pytest.mark.slow
def test_absorbed_changes_still_fine_tune_with_the_sizes_predicted(diet_config, regex_model, grown, tmp_path):
    """A second regex (Rasa merges it into the known ones), a longer lookup table (same name: replaced), new
    words and char n-grams, an upper-case word (a new lexical value): every size grows, Rasa fine-tunes."""
    longer = {**LOOKUP, "elements": [*LOOKUP["elements"], "anchovies", "jalapenos"]}
    data = with_patterns(grown, REGEXES, [longer], extra=[SHOUT])
    path = data.to_yaml(tmp_path / "today.yml")
    assert problem(regex_model.archive, diet_config, data, tmp_path) is None
    [predicted], patterns = finetune.feature_facts(regex_model.archive, diet_config, path)
    assert patterns == [finetune.decide.PatternCount("RegexFeaturizer", 2, 3)]
    sequence = predicted.today["text"]["sequence"]
    assert all(n >= s for n, s in zip(sequence, predicted.stored["text"]["sequence"], strict=True))
    assert sequence != predicted.stored["text"]["sequence"]
    model = training.train(
        diet_config, path, tmp_path / "out", finetune_from=regex_model.archive, epoch_fraction=0.34
    )
    [after], _ = finetune.feature_facts(model.archive, diet_config, path)
    assert after.stored == predicted.today  # what the fine-tuned DIET stored is what was predicted


# --- whole assistants: NLU and dialogue (Rasa also checks the domain as the policies see it) ---


@pytest.fixture(scope="module")
def assistant_config(pizza_project):
    return pipelines.load(CONFIGS / "logreg_crf.yml", 3, 42, pizza_project.pipeline_defaults())  # conftest's


@pytest.fixture(scope="module")
def assistant_yaml(assistant_model):
    return assistant_model.archive.parent / "train.yml"


def changed_project(tmp_path, change) -> object:
    root = tmp_path / "project"
    shutil.copytree(PIZZA_PROJECT, root)
    domain = yaml.safe_load((root / "domain.yml").read_text())
    change(domain)
    (root / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False))
    return load_project(root)


def test_a_whole_assistant_is_checked_on_nlu_and_dialogue(
    assistant_model, assistant_config, assistant_yaml, pizza_project
):
    assert finetune.epoch_components(assistant_config) == ["ResponseSelector", "TEDPolicy"]
    view = finetune.training_view(assistant_config, assistant_yaml, pizza_project)
    assert view.run_type == "both" and set(view.fingerprints) == {"nlu", "core"}
    assert view.fingerprints == finetune.stored_fingerprints(assistant_model.archive)
    digest = finetune.config_digest(assistant_config)
    assert (
        finetune.finetune_problem(
            assistant_model.archive, assistant_config, digest, assistant_yaml, pizza_project
        )
        is None
    )
    nlu_config = pipelines.load(CONFIGS / "logreg_crf.yml", 3, 42)
    assert finetune.archive_problem(
        assistant_model.archive, finetune.training_view(nlu_config, assistant_yaml), "7"
    ) == ("production version 7 is a whole assistant (NLU and dialogue); this run trains NLU")


def add_slot(domain):
    domain["slots"] = {"table": {"type": "text", "mappings": [{"type": "custom"}]}}


def add_response(domain):
    domain["responses"]["utter_menu"] = [{"text": "Margherita, pepperoni, funghi."}]


@pytest.mark.parametrize("change", [add_slot, add_response])
def test_a_changed_domain_stops_a_whole_assistant_fine_tune(
    assistant_model, assistant_config, assistant_yaml, tmp_path, change
):
    project = changed_project(tmp_path, change)
    digest = finetune.config_digest(assistant_config)
    reason = finetune.finetune_problem(
        assistant_model.archive, assistant_config, digest, assistant_yaml, project, "7"
    )
    assert reason.startswith("the domain changed since production version 7 in what the dialogue policies")
    with pytest.raises(Exception) as refused:  # Rasa's FinetuningValidator, before any training
        training.train(
            assistant_config, assistant_yaml, tmp_path / "out", finetune_from=assistant_model.archive,
            project=project,
        )  # fmt: skip
    causes = [refused.value, refused.value.__cause__]
    assert any("keys that affect the training of core components have changed" in str(e) for e in causes)


@pytest.mark.slow
def test_rasa_fine_tunes_a_whole_assistant(
    assistant_model, assistant_config, assistant_yaml, pizza_project, tmp_path
):
    grown = with_examples(load_nlu(assistant_yaml), {"text": "hey there pizza bot", "intent": "greet"})
    data = grown.to_yaml(tmp_path / "train.yml")
    digest = finetune.config_digest(assistant_config)
    assert (
        finetune.finetune_problem(assistant_model.archive, assistant_config, digest, data, pizza_project)
        is None
    )
    model = training.train(
        assistant_config, data, tmp_path / "out", finetune_from=assistant_model.archive, epoch_fraction=0.34,
        project=pizza_project,
    )  # fmt: skip
    assert finetune.archive_training_type(model.archive) == "both"
    assert finetune.stored_fingerprints(model.archive) == finetune.stored_fingerprints(
        assistant_model.archive
    )
