"""The workflow file's schema: every key typed and range-checked, errors as one sentence naming the file (or
option), the key and the fix, the command line over the file, and the JSON Schema an editor validates the
shipped file with (``nlu-mlflow schema``)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from nlu_mlflow.decide.promotion import PromotionPolicy
from nlu_mlflow.errors import InputError
from nlu_mlflow.workflow import schema, settings
from tests.helpers import ROOT
from tests.helpers.cli import invoke

DEFAULT = PromotionPolicy()
ALPHA = PromotionPolicy(significance_alpha=0.05)


def policy_from(tmp_path: Path, promotion) -> PromotionPolicy:
    path = tmp_path / "nlu-mlflow.yml"
    path.write_text(yaml.safe_dump({"data": "x.yml", "promotion": promotion}))
    return settings.read_policy(path)


def rejected(tmp_path: Path, promotion) -> InputError:
    with pytest.raises(InputError) as raised:
        policy_from(tmp_path, promotion)
    return raised.value


@pytest.mark.parametrize(
    "mapping, expected",
    [
        pytest.param(None, DEFAULT, id="empty-section"),
        pytest.param({}, DEFAULT, id="empty-mapping"),
        pytest.param({"min_gain": 0}, PromotionPolicy(min_gain=0.0), id="int-as-float"),
        pytest.param({"significance_alpha": 0.05}, ALPHA, id="alpha-on"),
        pytest.param({"significance_alpha": None}, DEFAULT, id="alpha-null"),
        pytest.param({"significance_alpha": False}, DEFAULT, id="alpha-false"),
        pytest.param({"significance_alpha": "off"}, DEFAULT, id="alpha-off"),
        pytest.param(
            {"max_core_action_f1_drop": 0.02}, PromotionPolicy(max_core_action_f1_drop=0.02), id="core"
        ),
        pytest.param(
            {
                "primary_metric": "intent_f1_macro",
                "min_gain": 0.01,
                "max_entity_f1_drop": 0.05,
                "intent_min_support": 3,
                "max_intent_f1_drop": 0.2,
                "min_critical_pass_rate": 0.9,
                "significance_alpha": 0.01,
            },
            PromotionPolicy("intent_f1_macro", 0.01, 0.05, 3, 0.2, 0.9, 0.01),
            id="every-key",
        ),
    ],
)
def test_promotion_section_builds_the_policy(tmp_path, mapping, expected):
    policy = policy_from(tmp_path, {} if mapping is None else mapping)
    assert policy == expected
    assert isinstance(policy.min_gain, float)


@pytest.mark.parametrize(
    "mapping, message",
    [
        pytest.param(
            {"min_gian": 0.01},
            "nlu-mlflow.yml: unknown setting 'promotion.min_gian'; did you mean 'min_gain'?",
            id="unknown-key-suggestion",
        ),
        pytest.param(
            {"zzz": 1}, "unknown setting 'promotion.zzz'; use one of primary_metric, min_gain", id="list"
        ),
        pytest.param(
            {"min_gain": -0.1},
            "nlu-mlflow.yml: promotion.min_gain -0.1 must be a number >= 0; set e.g. `min_gain: 0.01` under "
            "`promotion:`.",
            id="negative-min-gain",
        ),
        pytest.param(
            {"min_gain": "abc"}, "promotion.min_gain 'abc' must be a number >= 0", id="string-number"
        ),
        pytest.param(
            {"max_entity_f1_drop": -1}, "promotion.max_entity_f1_drop -1 must be a number >= 0", id="drop"
        ),
        pytest.param(
            {"max_intent_f1_drop": float("nan")}, "promotion.max_intent_f1_drop nan must be", id="nan"
        ),
        pytest.param({"min_gain": True}, "promotion.min_gain True must be a number >= 0", id="bool-number"),
        pytest.param(
            {"significance_alpha": 1.5}, "strictly between 0 and 1, or null/off", id="alpha-above-1"
        ),
        pytest.param(
            {"significance_alpha": 0}, "promotion.significance_alpha 0 must be a number strictly", id="a0"
        ),
        pytest.param(
            {"significance_alpha": True}, "promotion.significance_alpha True must be", id="alpha-true"
        ),
        pytest.param(
            {"intent_min_support": 2.5}, "intent_min_support 2.5 must be a whole number >= 1", id="2.5"
        ),
        pytest.param(
            {"intent_min_support": 0}, "intent_min_support 0 must be a whole number >= 1", id="zero"
        ),
        pytest.param(
            {"min_critical_pass_rate": 1.2}, "1.2 must be a number between 0 and 1", id="critical-1.2"
        ),
        pytest.param(
            {"min_conversation_pass_rate": 2}, "2 must be a number between 0 and 1", id="conversations"
        ),
        pytest.param(
            {"primary_metric": ""}, "promotion.primary_metric '' must be a non-empty text", id="metric"
        ),
        pytest.param(
            ["min_gain"],
            "nlu-mlflow.yml: promotion ['min_gain'] must be a mapping of settings; set e.g. `promotion: "
            "{primary_metric: intent_f1_macro}`.",
            id="not-a-mapping",
        ),
    ],
)
def test_bad_promotion_values_name_file_key_and_fix(tmp_path, mapping, message):
    assert message in str(rejected(tmp_path, mapping))


def test_every_problem_is_reported():
    with pytest.raises(InputError) as raised:
        settings.build({"epochs": -1}, None, {"min_gain": -1})
    assert raised.value.problems == [
        "command line: --epochs -1 must be a whole number >= 0, or null; pass e.g. --epochs 40.",
        "command line: --min-gain -1 must be a number >= 0; pass e.g. --min-gain 0.01.",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("epohcs: 3\n", "wf.yml: unknown setting 'epohcs'; did you mean 'epochs'?"),
        ("epochs: -1\n", "wf.yml: epochs -1 must be a whole number >= 0, or null; set e.g. `epochs: 40`."),
        ("epochs: 1.5\n", "epochs 1.5 must be a whole number"),
        ("seed: '42'\n", "seed '42' must be a whole number >= 0"),
        ("register: 'no'\n", "register 'no' must be true or false"),
        ("test_fraction: 1\n", "test_fraction 1 must be a number strictly between 0 and 1"),
        ("parallel: 0\n", "parallel 0 must be a whole number >= 1; set e.g. `parallel: 2`."),
        (
            "backend: kubernets\n",
            "backend 'kubernets' must be one of inline, local, kubernetes (did you mean",
        ),
        ("model_name: 5\n", "model_name 5 must be a non-empty text, or null"),
    ],
)
def test_bad_file_values_name_file_key_and_fix(tmp_path, text, message):
    path = tmp_path / "wf.yml"
    path.write_text("data: x.yml\n" + text)
    with pytest.raises(InputError) as raised:
        settings.build({}, path)
    assert message in str(raised.value)


def test_command_line_wins_over_the_file_and_the_file_over_the_defaults(tmp_path):
    path = tmp_path / "wf.yml"
    path.write_text(
        "data: d/train.yml\nepochs: 5\nseed: 7\npromotion:\n  min_gain: 0.01\n  max_entity_f1_drop: 0.1\n"
    )
    built = settings.build({"epochs": 2, "seed": None, "min_gain": 0.05, "significance_alpha": "off"}, path)
    assert (built.epochs, built.seed, built.test_fraction) == (2, 7, 0.2)
    assert (built.policy.min_gain, built.policy.max_entity_f1_drop) == (0.05, 0.1)
    assert built.policy.significance_alpha is None
    assert built.data == (tmp_path / "d" / "train.yml").resolve()  # from the file's folder


def test_a_bad_command_line_value_names_the_option_even_when_the_file_sets_the_key(tmp_path):
    path = tmp_path / "wf.yml"
    path.write_text("data: x.yml\nepoch_fraction: 0.5\n")
    with pytest.raises(
        InputError, match=r"^command line: --epoch-fraction 1.5 must be a number > 0 and <= 1"
    ):
        settings.build({"epoch_fraction": 1.5}, path)


def test_settings_that_conflict_are_one_sentence_each(tmp_path):  # noqa: ARG001
    with pytest.raises(InputError) as raised:
        settings.build(
            {"data": "x.yml", "project": "p", "backend": "kubernetes", "kubernetes_config": "nope"}
        )
    assert raised.value.problems == [
        "command line: --data and --project both given; a project's NLU data is its data/ folder, so pass one "
        "of them.",
        "command line: backend kubernetes needs a kubernetes config (--kubernetes-config, default "
        "deploy/kubernetes/kubernetes_config.json); see docs/shared-server.md for what it holds.",
    ]


@pytest.mark.parametrize(
    "given, expected",
    [
        pytest.param({"project": "data/pizza-assistant"}, "rasa-assistant", id="project"),
        pytest.param({"data": "data/pizza/train.yml"}, "rasa-nlu", id="nlu-data"),
        pytest.param({"project": "p", "model_name": "mine"}, "mine", id="given"),
    ],
)
def test_default_model_name_follows_what_is_trained(given, expected):
    assert settings.build(given).model_name == expected


def test_the_shipped_file_names_no_model_and_registers_the_assistant():
    """`make demo` (the workflow file) and `mlflow run` (the MLproject) take the same default."""
    assert "model_name" not in yaml.safe_load((ROOT / "nlu-mlflow.yml").read_text())
    assert settings.build({}, ROOT / "nlu-mlflow.yml").model_name == "rasa-assistant"


# --- the JSON Schema (nlu-mlflow schema) ---


@pytest.fixture(scope="module")
def printed_schema() -> dict:
    result = invoke(["schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_printed_schema_validates_the_shipped_workflow_file(printed_schema):
    jsonschema.Draft7Validator.check_schema(printed_schema)
    jsonschema.validate(yaml.safe_load((ROOT / "nlu-mlflow.yml").read_text()), printed_schema)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"project": "p", "epohcs": 3}, id="typo"),
        pytest.param({"project": "p", "promotion": {"min_gian": 0.1}}, id="typo-in-section"),
        pytest.param({"project": "p", "epochs": -1}, id="range"),
        pytest.param({"project": "p", "promotion": {"min_critical_pass_rate": 1.5}}, id="fraction"),
        pytest.param({"project": "p", "backend": "kubernets"}, id="choice"),
        pytest.param({"project": "p", "register": "yes"}, id="type"),
    ],
)
def test_printed_schema_rejects_what_the_workflow_rejects(printed_schema, tmp_path, document):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, printed_schema)
    path = tmp_path / "wf.yml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError):
        settings.build({}, path)


def test_printed_schema_takes_null_and_off_where_the_workflow_does(printed_schema):
    jsonschema.validate({"epochs": None, "promotion": {"significance_alpha": "off"}}, printed_schema)


def test_docs_list_every_key_as_the_schema_says():
    """docs/settings.md holds the table `nlu-mlflow schema --markdown` prints (regenerate it there)."""
    docs = (ROOT / "docs" / "settings.md").read_text()
    assert schema.markdown_table() in docs, "docs/settings.md is stale: paste `nlu-mlflow schema --markdown`"


def test_the_committed_schema_file_is_what_the_command_prints(printed_schema):
    """nlu-mlflow.yml's `# yaml-language-server: $schema=docs/nlu-mlflow.schema.json` line points at it."""
    assert json.loads((ROOT / "docs" / "nlu-mlflow.schema.json").read_text()) == printed_schema
    first = (ROOT / "nlu-mlflow.yml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=docs/nlu-mlflow.schema.json"
