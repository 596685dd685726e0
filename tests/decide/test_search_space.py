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


def test_yaml_1_1_float_strings_are_read_as_numbers():
    """PyYAML reads `1e-4` (no dot) as a string; the example range in docs/scaling.md must still work."""
    (dim,) = search_space.parse(
        "c.yml", {"DIETClassifier.learning_rate": {"float": ["1e-4", 0.01]}}, PIPELINE
    )
    assert (dim.low, dim.high) == (1e-4, 0.01)
    with pytest.raises(InputError, match="with float numbers"):
        search_space.parse("c.yml", {"DIETClassifier.learning_rate": {"float": ["small", 0.01]}}, PIPELINE)


EPOCHS = {"int": [50, 300], "log": True}


@pytest.mark.parametrize(
    "spec, cap, expected",
    [
        (EPOCHS, 100, (50, 100, ())),
        (EPOCHS, 40, (40, 40, ())),  # the whole range above the cap: every trial trains the cap
        (EPOCHS, None, (50, 300, ())),
        ({"choice": [10, 50, 200]}, 40, (None, None, (10, 40))),
    ],
)
def test_a_searched_epochs_respects_the_epoch_cap(spec, cap, expected):
    search = {"DIETClassifier.epochs": spec, "DIETClassifier.learning_rate": {"float": [1e-4, 1e-2]}}
    epochs, rate = search_space.capped(search_space.parse("c.yml", search, PIPELINE), cap)
    assert (epochs.low, epochs.high, epochs.choices) == expected
    assert (rate.low, rate.high) == (1e-4, 1e-2), "only epochs is capped"


@pytest.mark.parametrize(
    "full, first, expected",
    [
        (27, 3, [3, 9, 27]),
        (10, 2, [2, 6, 10]),
        (60, 12, [12, 36, 60]),
        (2, 1, [1, 2]),
        (1, 1, [1]),
        (27, None, [27]),  # no pruning: one rung, the full budget
        (None, 3, [None]),  # nothing trains in epochs
    ],
)
def test_rungs_grow_threefold_up_to_the_full_epochs(full, first, expected):
    assert search_space.rungs(full, first) == expected


@pytest.mark.parametrize("top, first", [(27, 3), (100, 12), (300, 34), (9, 1), (2, 1)])
def test_the_first_rung_gives_about_three_rungs(top, first):
    assert search_space.min_epochs(top) == first


def test_section_reads_back_as_the_same_dimensions():
    search = {
        "DIETClassifier.epochs": {"int": [50, 300], "log": True},
        "DIETClassifier.learning_rate": {"float": [1e-4, 1e-2]},
        "CountVectorsFeaturizer.1.max_ngram": {"choice": [3, 4, 5]},
    }
    dims = search_space.parse("c.yml", search, PIPELINE)
    assert search_space.section(dims) == search
    assert search_space.parse("c.yml", search_space.section(dims), PIPELINE) == dims


@pytest.mark.parametrize(
    "value, inside", [(50, True), (300, True), (49, False), (100.5, False), (True, False), (None, False)]
)
def test_contains_tells_whether_a_configured_value_can_be_tried(value, inside):
    (dim,) = search_space.parse("c.yml", {"DIETClassifier.epochs": EPOCHS}, PIPELINE)
    assert search_space.contains(dim, value) is inside
