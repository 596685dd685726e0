"""The `search:` section: parsed into dimensions, every bad name or range an input error naming file and fix."""

import pytest

from nlu_mlflow.decide import search_space
from nlu_mlflow.errors import InputError

PIPELINE = [
    {"name": "WhitespaceTokenizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
    {"name": "DIETClassifier", "epochs": 100},
]


def test_the_three_kinds_parse_and_apply_to_the_right_component():
    search = {
        "DIETClassifier.epochs": {"int": [50, 300], "log": True},
        "DIETClassifier.learning_rate": {"float": [1e-4, 1e-2], "log": True},
        "CountVectorsFeaturizer.1.max_ngram": {"choice": [3, 4, 5]},
    }
    dims = search_space.parse("config.yml", search, PIPELINE)
    assert [(d.component, d.option, d.kind, d.log) for d in dims] == [
        (3, "epochs", "int", True),
        (3, "learning_rate", "float", True),
        (2, "max_ngram", "choice", False),
    ]
    assert dims[2].choices == (3, 4, 5) and (dims[0].low, dims[0].high) == (50, 300)
    values = {
        "DIETClassifier.epochs": 77,
        "DIETClassifier.learning_rate": 0.003,
        "CountVectorsFeaturizer.1.max_ngram": 5,
    }
    tuned = search_space.apply(PIPELINE, dims, values)
    assert tuned[3] == {"name": "DIETClassifier", "epochs": 77, "learning_rate": 0.003}
    assert tuned[2]["max_ngram"] == 5 and PIPELINE[2]["max_ngram"] == 4  # the original is untouched
    assert tuned[1] == PIPELINE[1]


def test_no_search_section_means_no_dimensions():
    assert search_space.parse("config.yml", None, PIPELINE) == []


@pytest.mark.parametrize(
    "search, says",
    [
        ({"ResponseSelector.epochs": {"int": [1, 5]}}, "ResponseSelector, which is not in the pipeline"),
        ({"CountVectorsFeaturizer.max_ngram": {"choice": [3, 4]}}, "ambiguous"),
        ({"CountVectorsFeaturizer.2.max_ngram": {"choice": [3, 4]}}, "has 2 (0-based)"),
        ({"DIETClassifier": {"int": [1, 5]}}, "must be `Component.option`"),
        ({"DIETClassifier.x.epochs": {"int": [1, 5]}}, "must be `Component.option`"),
        ({"DIETClassifier.name": {"choice": ["a", "b"]}}, "cannot change a component's name"),
        ({"DIETClassifier.epochs": {"int": [300, 50]}}, "is not below high"),
        ({"DIETClassifier.epochs": {"int": [1.5, 50]}}, "with int numbers"),
        ({"DIETClassifier.epochs": {"int": [1]}}, "[low, high]"),
        ({"DIETClassifier.learning_rate": {"float": [0, 0.1], "log": True}}, "log range needs low > 0"),
        ({"DIETClassifier.epochs": {"normal": [1, 5]}}, "must be one of"),
        ({"DIETClassifier.epochs": {"int": [1, 5], "choice": [1, 2]}}, "must be one of"),
        ({"DIETClassifier.epochs": {"choice": [5]}}, "at least two values"),
        ({"DIETClassifier.epochs": {"choice": [5, 6], "log": True}}, "`log` must be"),
        ({"DIETClassifier.epochs": 100}, "must be one of"),
    ],
)
def test_a_bad_entry_is_an_input_error_naming_file_field_and_fix(search, says):
    with pytest.raises(InputError) as raised:
        search_space.parse("configs/diet.yml", search, PIPELINE)
    (message,) = raised.value.problems
    assert message.startswith("configs/diet.yml: search `") and says in message
    assert message.endswith(".")


def test_every_bad_entry_is_reported_at_once():
    search = {"Nope.epochs": {"int": [1, 5]}, "DIETClassifier.epochs": {"int": [5, 1]}}
    with pytest.raises(InputError) as raised:
        search_space.parse("c.yml", search, PIPELINE)
    assert len(raised.value.problems) == 2


@pytest.mark.parametrize("search", [[], "DIETClassifier.epochs", {}])
def test_search_must_be_a_mapping(search):
    with pytest.raises(InputError, match="`search` must be a mapping"):
        search_space.parse("c.yml", search, PIPELINE)
