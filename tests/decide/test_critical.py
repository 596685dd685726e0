"""Critical utterances: parsing and checking the suite file, scoring parse results, one real model."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap

import pytest

from nlu_mlflow.constants import CRITICAL_FAILURES, CRITICAL_PASS_RATE
from nlu_mlflow.decide import critical_score
from nlu_mlflow.decide.critical_suite import CriticalSuite, CriticalUtterance
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.workflow.inputs import load_suite, parse_suite
from tests.helpers import PIZZA

SHIPPED = PIZZA / "critical.yml"
SOURCE = "suites/bad.yml"
KNOWN = {"greet", "cancel_order", "purchase"}


@pytest.fixture(scope="module")
def pizza_intents() -> set[str]:
    return {m.get("intent") for m in load_nlu(PIZZA / "train.yml").examples}


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _problems(text: str, known: set[str] | None = KNOWN) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_suite(_yaml(text), SOURCE, known)
    return info.value.problems


# --- the shipped suite ---------------------------------------------------------------------------


def test_shipped_suite_intents_all_occur_in_the_training_data(pizza_intents):
    suite = load_suite(SHIPPED, pizza_intents)
    assert len(suite.utterances) == 8
    assert {u.intent for u in suite.utterances} <= pizza_intents


def test_shipped_suite_parses_into_records(pizza_intents):
    suite = load_suite(SHIPPED, pizza_intents)
    assert suite.path == str(SHIPPED)
    assert suite.utterances[0] == CriticalUtterance("please cancel my order", "cancel_order", (), 0.3)
    assert suite.utterances[1] == CriticalUtterance(
        "i want to speak to a real person", "human_handoff", (), None
    )
    assert suite.utterances[2].entities == (("size", "large"), ("product", "pepperoni pizza"))
    assert suite.texts()[-1] == "are you a robot"
    assert re.fullmatch(r"[0-9a-f]{16}", suite.digest)


def test_intent_check_is_skipped_without_known_intents():
    suite = parse_suite("utterances:\n- {text: hi, intent: anything}\n", SOURCE, None)
    assert suite.utterances[0].intent == "anything"


def test_numeric_entity_value_is_read_as_text_and_empty_list_is_an_empty_suite():
    suite = parse_suite(
        "utterances:\n- {text: two pizzas, intent: purchase, entities: [{entity: quantity, value: 2}]}\n",
        SOURCE,
        KNOWN,
    )
    assert suite.utterances[0].entities == (("quantity", "2"),)
    assert parse_suite("version: 1\nutterances: []\n", SOURCE, KNOWN).utterances == ()


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yml"
    with pytest.raises(InputError, match=re.escape(f"{missing}: no such file; pass an existing")):
        load_suite(missing, KNOWN)


# --- malformed suites: each problem names the file, the entry and the fix ---------------------------

MALFORMED = [
    # (id, suite text, entry named in the message or None for file-level problems, fix fragment)
    ("unreadable-yaml", "utterances:\n  - text: [hi\n", None, "fix the YAML syntax there"),
    ("empty-file", "", None, "is empty; start the file with `utterances:`"),
    (
        "top-level-list",
        "- {text: hi, intent: greet}\n",
        None,
        "not a mapping; start the file with `utterances:`",
    ),
    (
        "no-utterances",
        "version: 1\n",
        None,
        "`utterances:` list is missing; add a top-level `utterances:` list",
    ),
    ("utterances-not-list", "utterances: {text: hi}\n", None, "list is a mapping; add a top-level"),
    (
        "unknown-top-key",
        "utterances: []\ntests: []\n",
        None,
        "unknown key 'tests'; use only version, utterances",
    ),
    ("bad-version", "version: 2\nutterances: []\n", None, "version 2 is not supported; write `version: 1`"),
    ("entry-not-mapping", "utterances:\n- hello\n", "entry 1 (no text)", "write it as `- text: ...`"),
    ("missing-text", "utterances:\n- {intent: greet}\n", "entry 1 (no text)", "`text` is missing; add the"),
    (
        "boolean-text",
        "utterances:\n- {text: yes, intent: greet}\n",
        "entry 1 (no text)",
        'quoted text, e.g. `text: "yes"`',
    ),
    (
        "command-text",
        "utterances:\n- {text: /greet, intent: greet}\n",
        "entry 1 ('/greet')",
        "remove the leading '/'",
    ),
    (
        "missing-intent",
        "utterances:\n- {text: hi}\n",
        "entry 1 ('hi')",
        "`intent` is missing; add the expected intent",
    ),
    (
        "number-intent",
        "utterances:\n- {text: hi, intent: 3}\n",
        "entry 1 ('hi')",
        "`intent` is the number 3; write",
    ),
    (
        "unknown-intent",
        "utterances:\n- {text: stop it, intent: cancel_ordr}\n",
        "entry 1 ('stop it')",
        "intent 'cancel_ordr' does not occur in the training data; use one of the training intents "
        "(did you mean 'cancel_order'?)",
    ),
    (
        "entities-not-list",
        "utterances:\n- {text: hi, intent: greet, entities: {entity: a, value: b}}\n",
        "entry 1 ('hi')",
        "`entities` is a mapping, not a list; write it as a list",
    ),
    (
        "entity-not-mapping",
        "utterances:\n- {text: a pizza, intent: purchase, entities: [product]}\n",
        "entry 1 ('a pizza')",
        "entity 1 is the text 'product', not a mapping; write it as `{entity: type, value: text}`",
    ),
    (
        "entity-missing-value",
        "utterances:\n- {text: a pizza, intent: purchase, entities: [{entity: product}]}\n",
        "entry 1 ('a pizza')",
        "entity 1: `value` is missing; write the expected value",
    ),
    (
        "entity-missing-type",
        "utterances:\n- {text: a pizza, intent: purchase, entities: [{value: pizza}]}\n",
        "entry 1 ('a pizza')",
        "entity 1: `entity` is missing; write the entity type",
    ),
    (
        "entity-boolean-value",
        "utterances:\n- {text: yes please, intent: greet, entities: [{entity: answer, value: yes}]}\n",
        "entry 1 ('yes please')",
        "`value` is the boolean True",
    ),
    (
        "entity-unknown-key",
        "utterances:\n- {text: a pizza, intent: purchase, entities: [{entity: p, value: x, role: y}]}\n",
        "entry 1 ('a pizza')",
        "entity 1: unknown key 'role'; use only entity, value",
    ),
    (
        "confidence-above-one",
        "utterances:\n- {text: hi, intent: greet, min_confidence: 1.5}\n",
        "entry 1 ('hi')",
        "`min_confidence` 1.5 is outside 0..1; write a number between 0 and 1",
    ),
    (
        "confidence-negative",
        "utterances:\n- {text: hi, intent: greet, min_confidence: -0.1}\n",
        "entry 1 ('hi')",
        "-0.1 is outside 0..1",
    ),
    (
        "confidence-not-number",
        "utterances:\n- {text: hi, intent: greet, min_confidence: high}\n",
        "entry 1 ('hi')",
        "`min_confidence` is the text 'high'; write a number between 0 and 1",
    ),
    (
        "confidence-boolean",
        "utterances:\n- {text: hi, intent: greet, min_confidence: true}\n",
        "entry 1 ('hi')",
        "`min_confidence` is the boolean True",
    ),
    (
        "unknown-entry-key",
        "utterances:\n- {text: hi, intent: greet, confidence: 0.5}\n",
        "entry 1 ('hi')",
        "unknown key 'confidence'; use only text, intent, entities, min_confidence "
        "(did you mean 'min_confidence'?)",
    ),
]


@pytest.mark.parametrize(("text", "entry", "fix"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_suite_names_file_entry_and_fix(text, entry, fix):
    problems = _problems(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{SOURCE}: ")
    if entry:
        assert problems[0].startswith(f"{SOURCE}: {entry}")
    assert fix in problems[0]
    assert problems[0].endswith(".")


def test_all_problems_are_collected_and_good_entries_not_reported():
    problems = _problems(
        """
        utterances:
          - {text: hello there, intent: greet}
          - {text: cancel it, intent: cancel}
          - text: buy a pizza
            intent: purchase
            entities: [{entity: product}]
            min_confidence: 2
        """
    )
    assert [p.split(":")[1].strip() for p in problems] == [
        "entry 2 ('cancel it')",
        "entry 3 ('buy a pizza')",
        "entry 3 ('buy a pizza')",
    ]
    assert not any("hello there" in p for p in problems)


def test_file_level_and_entry_problems_come_together():
    problems = _problems("version: 3\nutterances:\n- {text: hi}\n")
    assert len(problems) == 2
    assert "version 3" in problems[0] and "entry 1 ('hi')" in problems[1]


def test_long_text_is_shortened_in_the_entry_name():
    long = "please " * 20
    (problem,) = _problems(f"utterances:\n- {{text: '{long}'}}\n")
    assert "entry 1 ('please please" in problem and "...')" in problem
    assert long not in problem


# --- digest ------------------------------------------------------------------------------------------

BASE = """
utterances:
  - {text: hi, intent: greet, min_confidence: 0.5}
  - text: a large pizza
    intent: purchase
    entities: [{entity: size, value: large}, {entity: product, value: pizza}]
"""


def _digest(text: str) -> str:
    return parse_suite(_yaml(text), SOURCE, KNOWN).digest


def test_digest_ignores_key_order_entity_order_and_file_name():
    reordered = """
    version: 1
    utterances:
      - entities: [{value: pizza, entity: product}, {value: large, entity: size}]
        intent: purchase
        text: a large pizza
      - {min_confidence: 0.50, intent: greet, text: hi}
    """
    assert _digest(reordered) == _digest(BASE)
    assert parse_suite(_yaml(BASE), "other.yml", KNOWN).digest == _digest(BASE)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("text: hi,", "text: hello,"),
        ("intent: greet,", "intent: cancel_order,"),
        ("min_confidence: 0.5", "min_confidence: 0.6"),
        ("value: large", "value: small"),
        ("entity: size", "entity: pizza_size"),
        (", min_confidence: 0.5", ""),
    ],
)
def test_digest_changes_when_an_utterance_changes(old, new):
    assert old in BASE
    assert _digest(BASE.replace(old, new)) != _digest(BASE)


# --- scoring -----------------------------------------------------------------------------------------


def _parse(intent: str | None, confidence: float = 0.9, *entities: tuple[str, object]) -> dict:
    return {
        "text": "...",
        "intent": {"name": intent, "confidence": confidence},
        "entities": [
            {"entity": e, "value": v, "start": 0, "end": 1, "extractor": "CRFEntityExtractor"}
            for e, v in entities
        ],
    }


PIZZA_ORDER = CriticalUtterance("a large pepperoni pizza", "purchase", (("product", "pepperoni pizza"),))
CANCEL = CriticalUtterance("cancel my order", "cancel_order", (), 0.5)

SCORING = [
    # (id, utterance, parse, expected reason; "" means passed)
    ("exact", PIZZA_ORDER, _parse("purchase", 0.9, ("product", "pepperoni pizza")), ""),
    ("intent-mismatch", CANCEL, _parse("greet", 0.9), "predicted intent 'greet', expected 'cancel_order'"),
    (
        "no-intent",
        CANCEL,
        {"text": "x", "intent": None, "entities": []},
        "predicted no intent, expected 'cancel_order'",
    ),
    ("low-confidence", CANCEL, _parse("cancel_order", 0.21), "confidence 0.21 below 0.50"),
    ("confidence-at-floor", CANCEL, _parse("cancel_order", 0.5), ""),
    ("confidence-rounds-equal", CANCEL, _parse("cancel_order", 0.499), "confidence 0.499 below 0.500"),
    (
        "wrong-intent-low-confidence",
        CANCEL,
        _parse("greet", 0.1),
        "predicted intent 'greet', expected 'cancel_order'",
    ),
    ("missing-entity", PIZZA_ORDER, _parse("purchase", 0.9), "missing entity product='pepperoni pizza'"),
    ("case-insensitive-value", PIZZA_ORDER, _parse("purchase", 0.9, ("product", " Pepperoni Pizza ")), ""),
    (
        "entity-type-exact",
        PIZZA_ORDER,
        _parse("purchase", 0.9, ("Product", "pepperoni pizza")),
        "missing entity product='pepperoni pizza'",
    ),
    (
        "wrong-value",
        PIZZA_ORDER,
        _parse("purchase", 0.9, ("product", "pepperoni")),
        "missing entity product='pepperoni pizza'",
    ),
    (
        "extra-entities-ok",
        PIZZA_ORDER,
        _parse("purchase", 0.9, ("size", "large"), ("product", "pepperoni pizza")),
        "",
    ),
    (
        "numeric-value",
        CriticalUtterance("two pizzas", "purchase", (("quantity", "2"),)),
        _parse("purchase", 0.9, ("quantity", 2)),
        "",
    ),
    (
        "every-reason",
        CriticalUtterance("x", "purchase", (("size", "large"), ("product", "pizza"))),
        _parse("greet", 0.9, ("size", "LARGE")),
        "predicted intent 'greet', expected 'purchase'; missing entity product='pizza'",
    ),
]


@pytest.mark.parametrize(
    ("utterance", "parse", "reason"), [c[1:] for c in SCORING], ids=[c[0] for c in SCORING]
)
def test_score_reason(utterance, parse, reason):
    row = critical_score.score(CriticalSuite(SOURCE, (utterance,)), [parse]).table.iloc[0]
    assert row["reason"] == reason
    assert row["passed"] == (reason == "")


def test_table_columns_and_json_entities():
    result = critical_score.score(
        CriticalSuite(SOURCE, (PIZZA_ORDER,)), [_parse("purchase", 0.75, ("product", "pepperoni pizza"))]
    )
    assert list(result.table.columns) == list(critical_score.TABLE_COLUMNS)
    row = result.table.iloc[0]
    assert (row["text"], row["expected_intent"], row["predicted_intent"]) == (
        "a large pepperoni pizza",
        "purchase",
        "purchase",
    )
    assert row["confidence"] == pytest.approx(0.75)
    assert json.loads(row["expected_entities"]) == [{"entity": "product", "value": "pepperoni pizza"}]
    assert json.loads(row["predicted_entities"]) == [
        {
            "entity": "product",
            "value": "pepperoni pizza",
            "start": 0,
            "end": 1,
            "extractor": "CRFEntityExtractor",
        }
    ]
    assert result.table["passed"].dtype == bool


@pytest.mark.parametrize(
    ("outcomes", "pass_rate", "failures"),
    [
        ([True, True, False, True], 0.75, 1),
        ([False, False], 0.0, 2),
        ([True], 1.0, 0),
        ([True, False, False], 1 / 3, 2),
        ([], 1.0, 0),
    ],
)
def test_pass_rate_and_failures(outcomes, pass_rate, failures):
    suite = CriticalSuite(SOURCE, tuple(CriticalUtterance(f"text {i}", "greet", (), None) for i in outcomes))
    parses = [_parse("greet" if ok else "goodbye") for ok in outcomes]
    result = critical_score.score(suite, parses)
    assert result.pass_rate == pytest.approx(pass_rate)
    assert result.failures == failures
    assert result.metrics() == {CRITICAL_PASS_RATE: pytest.approx(pass_rate), CRITICAL_FAILURES: failures}
    assert list(result.table["passed"]) == outcomes
    assert list(result.table.columns) == list(critical_score.TABLE_COLUMNS)


def test_parses_must_line_up_with_the_suite():
    with pytest.raises(ValueError, match="got 1 parse results for 2 utterances"):
        critical_score.score(CriticalSuite(SOURCE, (CANCEL, PIZZA_ORDER)), [_parse("cancel_order")])


# --- a real model ------------------------------------------------------------------------------------


async def _parse_all(processor, texts: list[str]) -> list[dict]:
    from rasa.core.channels.channel import UserMessage

    return [await processor.parse_message(UserMessage(text)) for text in texts]


@pytest.mark.slow
def test_shipped_suite_scored_on_a_real_model(logreg_model, pizza_intents):
    from nlu_mlflow.rasa.evaluation import load_processor

    suite = load_suite(SHIPPED, pizza_intents)
    processor = load_processor(logreg_model.archive)
    parses = asyncio.run(_parse_all(processor, suite.texts()))
    result = critical_score.score(suite, parses)

    table = result.table
    print(table.to_string())
    assert list(table["text"]) == suite.texts()
    assert table["predicted_intent"].notna().all()
    assert result.pass_rate == pytest.approx(table["passed"].mean())
    assert result.failures == int((~table["passed"]).sum())
    assert (table["reason"] == "").equals(table["passed"])
