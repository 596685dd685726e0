"""The labeling rules (decide/labeling.py): the config from the domain's names, a parse as a pre-annotation, an
annotation read back, and what is refused before anything is written (tables of cases)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from nlu_mlflow.decide import labeling as lab

SCHEMA = lab.Schema(
    ("faq/opening_hours", "faq/vegan", "greet", "purchase"),
    (lab.EntityKind("city", roles=("departure", "destination")), lab.EntityKind("size", groups=("1", "2"))),
    "domain.yml",
)


def test_the_config_has_the_intents_as_choices_and_the_entities_as_spans_with_roles_and_groups():
    view = ET.fromstring(lab.label_config(SCHEMA))
    [text] = view.findall("Text")
    assert text.attrib == {"name": "text", "value": "$text"}
    intents = view.find("Choices[@name='intent']")
    assert [c.get("value") for c in intents] == list(SCHEMA.intents)
    assert intents.get("toName") == "text" and intents.get("choice") == "single-radio"
    assert [label.get("value") for label in view.find("Labels[@name='entity']")] == ["city", "size"]
    role = view.find("View[@whenLabelValue='city']/Choices")
    assert role.get("name") == "role_city" and role.get("perRegion") == "true"
    assert [c.get("value") for c in role] == ["departure", "destination"]
    assert [c.get("value") for c in view.find("View[@whenLabelValue='size']/Choices")] == ["1", "2"]


def test_a_domain_without_entities_has_no_labels():
    assert ET.fromstring(lab.label_config(lab.Schema(("greet",)))).find("Labels") is None


@pytest.mark.parametrize(
    "parse, intent, score",
    [
        ({"intent": {"name": "greet", "confidence": 0.9}}, "greet", 0.9),
        (  # a retrieval intent: the response selector's sub-intent
            {"intent": {"name": "faq", "confidence": 0.7},
             "response_selector": {"faq": {"response": {"intent_response_key": "faq/vegan"}}}},
            "faq/vegan", 0.7,
        ),
        (  # a fallback: the best-ranked intent that is a choice
            {"intent": {"name": "nlu_fallback", "confidence": 0.3},
             "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "purchase", "confidence": 0.25}]},
            "purchase", 0.25,
        ),
        ({"intent": {"name": "order_drink", "confidence": 0.8}}, None, 0.8),  # nothing to suggest
    ],
)  # fmt: skip
def test_the_pre_annotated_intent(parse, intent, score):
    assert lab.chosen_intent(parse, SCHEMA) == (intent, score)


def test_a_prediction_keeps_known_entities_with_roles_and_drops_placeholders_and_unknown_ones():
    text = "from Berlin to [EMAIL] a large pizza"
    parse = {
        "text": text,
        "intent": {"name": "purchase", "confidence": 0.55},
        "entities": [
            {"start": 5, "end": 11, "entity": "city", "role": "departure"},
            {"start": 15, "end": 22, "entity": "city"},  # covers a masked placeholder
            {"start": 25, "end": 30, "entity": "size"},
            {"start": 31, "end": 36, "entity": "product"},  # not in the domain
        ],
    }
    made = lab.prediction(parse, SCHEMA, "7")
    assert made.model_version == "7" and made.score == 0.55
    back = lab.example_of(text, made.result)
    assert back == lab.Example(
        text,
        "purchase",
        (
            {"start": 5, "end": 11, "value": "Berlin", "entity": "city", "role": "departure"},
            {"start": 25, "end": 30, "value": "large", "entity": "size"},
        ),
    )


def test_a_selection_with_spaces_is_trimmed_to_the_word():
    result = [
        {
            "id": "a",
            "from_name": "entity",
            "type": "labels",
            "value": {"start": 1, "end": 8, "labels": ["city"]},
        }
    ]
    assert lab.example_of(" Berlin  x", result).entities == (
        {"start": 1, "end": 7, "value": "Berlin", "entity": "city"},
    )


@pytest.mark.parametrize(
    "example, expected",
    [
        (lab.Example("hi", "greet"), []),
        (lab.Example("hi", None, skipped=True), []),  # skipped: nothing to check
        (lab.Example("hi", None), ["no intent chosen"]),
        (lab.Example("a coke", "order_drink"), ["intent 'order_drink' is not in domain.yml", "add it under `intents:` in domain.yml"]),
        (lab.Example("is it halal", "faq/halal"), ["add a response `utter_faq/halal` for it in domain.yml"]),
        (lab.Example("2 cokes", "purchase", ({"start": 2, "end": 7, "value": "cokes", "entity": "drink"},)),
         ["entity 'drink' is not in domain.yml", "add it under `entities:`"]),
        (lab.Example("to Rome", "purchase", ({"start": 3, "end": 7, "value": "Rome", "entity": "city", "role": "via"},)),
         ["role 'via' of entity 'city' is not in domain.yml"]),
        (lab.Example("mail [EMAIL]", "greet", ({"start": 5, "end": 12, "value": "[EMAIL]", "entity": "city"},)),
         ["covers a masked placeholder", "a placeholder is never an entity value"]),
    ],
)  # fmt: skip
def test_what_is_refused_names_the_fix(example, expected):
    found = " ".join(lab.problems(example, SCHEMA, "item 3"))
    assert all(part in found for part in expected) and (found == "") == (expected == [])
