"""When the workflow fine-tunes from production, and when a --finetune-only run trains from scratch: pure
tables of facts and the one sentence each fallback logs and tags."""

import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide import finetune as ft

DIET = ("DIETClassifier",)
PROD = ft.Base("4", "diet", "abc123", depth=0, run_id="r4", train_digest="t4")


@pytest.mark.parametrize(
    ("config", "digest", "components", "base", "expected"),
    [
        ("diet", "abc123", DIET, PROD, None),
        ("diet", "abc123", DIET, ft.Base("5", "diet@finetuned", "abc123", depth=2), None),
        ("diet", "abc123", DIET, None, "no production version of 'rasa-nlu' to fine-tune from"),
        ("logreg_crf", "abc123", (), PROD, "logreg_crf has no component Rasa fine-tunes"),
        ("diet", "fff000", DIET, PROD, "config changed: diet has config digest fff000, production version 4"),
        ("diet", "fff000", DIET, ft.Base("5", "diet@finetuned", "abc123"), "config changed: diet"),
        (
            "diet_intents_crf",
            "fff000",
            DIET,
            PROD,
            "production version 4 was trained from another config (diet, digest abc123), not from diet_intents_crf",
        ),
        ("diet", "abc123", DIET, ft.Base("4", "diet", None), "production version 4 has no config_digest tag"),
    ],
)
def test_config_problem(config, digest, components, base, expected):
    reason = ft.config_problem(config, digest, components, base, "rasa-nlu")
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith(expected), reason


def facts(**changes) -> ft.ArchiveFacts:
    values = {
        "rasa_version": "3.6.21",
        "this_rasa": "3.6.21",
        "archive_type": "nlu",
        "run_type": "nlu",
        "stored": {"nlu": "n1"},
        "today": {"nlu": "n1"},
        "known": {"intents": frozenset({"greet", "order"}), "entities": frozenset({"size"})},
        "labels": {"intents": frozenset({"greet", "order"}), "entities": frozenset({"size"})},
    }
    return ft.ArchiveFacts(**{**values, **changes})


NEW_INTENT = {"intents": frozenset({"greet", "order", "joke"}), "entities": frozenset({"size"})}
NO_ORDER = {"intents": frozenset({"greet"}), "entities": frozenset({"size"})}
FULL = {"archive_type": "both", "run_type": "both", "stored": {"nlu": "n1", "core": "k1"}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        (FULL | {"today": {"nlu": "n1", "core": "k1"}}, None),
        ({"rasa_version": "3.5.0"}, "production version 4 was trained by Rasa 3.5.0, this is Rasa 3.6.21"),
        (
            {"archive_type": "both"},
            "production version 4 is a whole assistant (NLU and dialogue); this run trains NLU",
        ),
        ({"run_type": "both"}, "production version 4 is an NLU model; this run trains whole assistants"),
        ({"stored": {}}, "production version 4 has no fine-tuning fingerprints"),
        ({"today": {"nlu": "n2"}, "labels": NEW_INTENT}, "new intents the model cannot take: joke"),
        (
            {"today": {"nlu": "n2"}, "labels": NO_ORDER},
            "intents production version 4 knows have no example in today's data",
        ),
        ({"today": {"nlu": "n2"}, "known": None}, "the NLU labels (intents, entities, entity roles"),
        ({"today": {"nlu": "n2"}}, "the NLU labels (intents, entities, entity roles"),  # e.g. a new role
        (FULL | {"today": {"nlu": "n1", "core": "k2"}}, "the domain changed since production version 4"),
    ],
)
def test_archive_problem(changes, expected):
    reason = ft.archive_problem(facts(**changes), "4")
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith(expected), reason


@pytest.mark.parametrize(
    ("depth", "every", "delta", "growth", "expected"),
    [
        (0, 7, ft.Delta(10, 0, 100), 0.2, None),
        (5, 7, ft.Delta(10, 0, 100), 0.2, None),
        (6, 7, ft.Delta(10, 0, 100), 0.2, "production version 4 is fine-tune 6 in a row"),
        (1, 2, ft.Delta(0, 0, 100), None, "production version 4 is fine-tune 1 in a row"),
        (9, None, ft.Delta(10, 0, 100), 0.2, None),
        (0, 7, ft.Delta(20, 5, 100), 0.2, None),  # exactly the share: not more
        (
            0,
            7,
            ft.Delta(21, 0, 100),
            0.2,
            "the data grew by 21% since production version 4 (21 examples added",
        ),
        (0, 7, None, 0.2, "the training data of production version 4 is not on record"),
        (0, 7, None, None, None),
    ],
)
def test_full_retrain_reason(depth, every, delta, growth, expected):
    base = ft.Base("4", "diet", "abc123", depth=depth)
    reason = ft.full_retrain_reason(base, every, delta, growth)
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith(expected), reason


def test_base_from_version_tags():
    tags = {
        c.TAG_CONFIG: "diet@finetuned",
        "config_digest": "abc",
        c.TAG_FINETUNE_DEPTH: "3",
        "train_digest": "t",
    }
    assert ft.Base.from_tags("9", "run9", tags) == ft.Base("9", "diet@finetuned", "abc", 3, "run9", "t")
    assert ft.Base.from_tags("2", None, {}).depth == 0
    assert ft.base_config(ft.finetuned_name("diet")) == "diet"


TEXT = "text"
NAMES = {
    TEXT: {"sequence": ["LexicalSyntacticFeaturizer", "CountVectorsFeaturizer", "CountVectorsFeaturizer"]}
}
STORED = {TEXT: {"sequence": [30, 120, 900], "sentence": [120, 900]}}


def sizes(today, stored=STORED, names=NAMES) -> ft.SparseSizes:
    return ft.SparseSizes("DIETClassifier", stored, today, names)


REGEX_NAMES = {TEXT: {"sequence": ["RegexFeaturizer", *NAMES[TEXT]["sequence"]]}}
NO_PATTERNS = [ft.PatternCount("RegexFeaturizer", 0, 0)]


@pytest.mark.parametrize(
    ("classifier", "patterns", "expected"),
    [
        (sizes(STORED), NO_PATTERNS, None),
        (sizes({TEXT: {"sequence": [31, 125, 950], "sentence": [125, 950]}}), NO_PATTERNS, None),  # all grow
        (
            sizes({TEXT: {"sequence": [28, 125, 950], "sentence": [125, 950]}}),
            NO_PATTERNS,
            "LexicalSyntacticFeaturizer's features for 'text' shrink from 30 to 28 since production version 4 "
            "(it learns its feature values from the data each training",
        ),
        (
            sizes({TEXT: {"sequence": [3, 30, 125, 950], "sentence": [3, 125, 950]}}, names=REGEX_NAMES),
            [ft.PatternCount("RegexFeaturizer", 0, 3)],
            "regex and lookup-table features appear: production version 4 was trained without any "
            "(RegexFeaturizer had no pattern), today's data has 3; Rasa compares feature sizes position by "
            "position",
        ),
        (  # a featurizer's features appear and no pair shrinks: still refused (the positions shift)
            sizes({TEXT: {"sequence": [40, 130, 950, 1000], "sentence": [130, 950]}}),
            NO_PATTERNS,
            "DIETClassifier: today's data gives 4 kinds of sequence features for 'text'",
        ),
        (
            sizes({TEXT: {"sequence": [30, 120, 900]}}, stored={}),
            NO_PATTERNS,
            "DIETClassifier: today's data gives sequence features for 'text', production version 4's model has",
        ),
        (sizes({}, stored=None), NO_PATTERNS, None),  # a ResponseSelector with no data, then or now
        (sizes(STORED, stored=None), NO_PATTERNS, "DIETClassifier did not train in production version 4"),
    ],
)
def test_feature_problem(classifier, patterns, expected):
    reason = ft.feature_problem([classifier], patterns, "4")
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith(expected), reason
