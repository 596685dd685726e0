from pathlib import Path

import pytest

from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import pipelines
from tests.helpers import CONFIGS


def write(tmp_path: Path, text: str, name: str = "cfg.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_say_when_to_pick_them(config):
    loaded = pipelines.load(config)
    assert loaded.component_names()
    assert config.read_text().startswith("#"), (
        "each shipped config starts with a comment saying when to pick it"
    )


def test_at_least_three_shipped_configs():
    assert len(pipelines.load_all(CONFIGS)) >= 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "pipeline: [{name: DIETClasifier}]",
            "unknown component 'DIETClasifier' (pipeline item 1); did you mean 'DIETClassifier'?",
        ),
        ("pipeline: [{name: WhitespaceTokenizer}, {epochs: 3}]", "pipeline item 2 has no `name:`"),
        ("language: en\n", "no `pipeline:` list"),
        ("pipeline: [{name: x\n", "not valid YAML at line"),
        ("pipeline: [{name: my.missing.Component}]", "unknown component 'my.missing.Component'"),
    ],
    ids=["typo", "no-name", "no-pipeline", "bad-yaml", "missing-custom"],
)
def test_bad_configs_name_file_item_and_fix(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        pipelines.load(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_custom_component_by_dotted_path_is_accepted(tmp_path):
    path = write(tmp_path, "pipeline: [{name: rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer}]")
    assert pipelines.load(path).component_names()


def test_epoch_cap_lowers_configured_and_default_epochs_only():
    config = {
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "DIETClassifier", "epochs": 100},
            {"name": "ResponseSelector"},  # default 300 epochs
            {"name": "DIETClassifier", "epochs": 2},
        ]
    }
    capped = pipelines.cap_epochs(config, 5)
    assert [c.get("epochs") for c in capped["pipeline"]] == [None, 5, 5, 2]
    assert config["pipeline"][1]["epochs"] == 100, "the input config is not modified"


def test_seed_fills_only_unset_random_seeds():
    config = {
        "pipeline": [
            {"name": "DIETClassifier"},
            {"name": "DIETClassifier", "random_seed": 7},
            {"name": "CRFEntityExtractor"},
        ]
    }
    seeded = pipelines.with_seed(config, 42)
    assert [c.get("random_seed") for c in seeded["pipeline"]] == [42, 7, None]


def test_flatten_names_index_component_and_parameter():
    config = pipelines.load(CONFIGS / "diet.yml", epochs=3)
    params = pipelines.flatten(config)
    index = config.component_names().index("DIETClassifier")
    assert params[f"pipeline.{index:02d}"] == "DIETClassifier"
    assert params[f"pipeline.{index:02d}.DIETClassifier.epochs"] == "3"
    assert params["language"] == "en"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("diet.yml", ["DIETClassifier"]),
        ("logreg_crf.yml", ["CRFEntityExtractor"]),
        ("diet_intents_crf.yml", ["CRFEntityExtractor"]),
    ],
)
def test_entity_extractors_in_pipeline_order(config, expected):
    assert pipelines.entity_extractors(pipelines.load(CONFIGS / config)) == expected


def test_duplicate_config_stems_rejected(tmp_path):
    write(tmp_path, "pipeline: [{name: WhitespaceTokenizer}]", "a.yml")
    write(tmp_path, "pipeline: [{name: WhitespaceTokenizer}]", "a.yaml")
    with pytest.raises(InputError, match="share the name 'a'"):
        pipelines.load_all(tmp_path)
