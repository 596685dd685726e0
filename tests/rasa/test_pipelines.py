from pathlib import Path

import pytest
import yaml

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


SEARCHED = """
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 100
search:
  DIETClassifier.epochs: {int: [50, 300], log: true}
  DIETClassifier.learning_rate: {float: [1e-4, 1e-2], log: true}
"""


def test_search_section_is_parsed_at_load_and_never_written_for_rasa(tmp_path):
    config = pipelines.load(write(tmp_path, SEARCHED), epochs=80, seed=42)
    assert [(d.name, d.low, d.high) for d in config.search] == [
        ("DIETClassifier.epochs", 50, 80),  # within --epochs, like the config's own epochs
        ("DIETClassifier.learning_rate", 1e-4, 1e-2),
    ]
    written = yaml.safe_load(config.write(tmp_path / "rasa.yml").read_text())
    assert "search" not in written and written["pipeline"][2]["epochs"] == 80
    assert config.current_values() == {"DIETClassifier.epochs": 80, "DIETClassifier.learning_rate": 0.001}
    trial = config.with_values({"DIETClassifier.epochs": 60, "DIETClassifier.learning_rate": 0.005})
    assert trial.pipeline[2]["random_seed"] == 42
    assert (trial.pipeline[2]["epochs"], trial.pipeline[2]["learning_rate"], trial.search) == (60, 0.005, ())
    assert trial.with_epoch_cap(20).max_epochs() == 20 and trial.max_epochs() == 60


def test_a_config_reads_back_from_its_text(tmp_path):
    config = pipelines.load(write(tmp_path, SEARCHED), epochs=80, seed=7)
    again = pipelines.parse(config.text(), config.path, 80, 7)
    assert (again.config, again.search, again.name) == (config.config, config.search, config.name)


def test_a_bad_search_section_is_an_input_error_at_load(tmp_path):
    path = write(tmp_path, SEARCHED.replace("DIETClassifier.learning_rate", "DIETClassifer.learning_rate"))
    with pytest.raises(InputError) as err:
        pipelines.load(path)
    assert str(err.value) == (
        f"{path}: search `DIETClassifer.learning_rate` names DIETClassifer, which is not in the pipeline; "
        "fix the name."
    )


def test_the_example_search_config_is_not_trained_by_default_and_loads():
    example = CONFIGS / "search" / "diet_search.yml"
    assert example not in pipelines.discover(CONFIGS), "configs/search/ must stay out of the default run"
    config = pipelines.load(example, epochs=30)
    assert {d.option for d in config.search} == {"epochs", "learning_rate", "max_ngram"}
    assert pipelines.discover(CONFIGS / "search") == [example]
