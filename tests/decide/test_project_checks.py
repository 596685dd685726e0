"""What the data uses but the domain does not declare: errors naming file and fix; unused names: warnings."""

import pytest

from nlu_mlflow.decide.project_checks import DomainFacts, Use, errors, warnings

DOMAIN = DomainFacts(
    file="domain.yml",
    intents=frozenset({"greet", "faq", "order", "nlu_fallback"}),
    entities=frozenset({"size"}),
    actions=frozenset({"utter_greet", "action_order", "order_form", "action_listen"}),
    responses=frozenset({"utter_greet", "utter_faq/hours", "utter_unused"}),
    forms=frozenset({"order_form"}),
    default_intents=frozenset({"nlu_fallback"}),
)
STORY = ("data/stories.yml", "story 'happy'")

ERRORS = [
    pytest.param(
        Use(*STORY, "intent", "bye"),
        "data/stories.yml: story 'happy' uses intent 'bye', which domain.yml does not list; add it under `intents:` in domain.yml.",
        id="intent-in-story",
    ),
    pytest.param(
        Use("data/nlu.yml", "", "intent", "bye"),
        "data/nlu.yml: examples use intent 'bye', which domain.yml does not list",
        id="intent-in-nlu",
    ),
    pytest.param(
        Use("data/nlu.yml", "", "entity", "color"),
        "entity 'color', which domain.yml does not list; add it under `entities:`",
        id="entity",
    ),
    pytest.param(
        Use(*STORY, "action", "utter_bye"),
        "response 'utter_bye', which has no text in domain.yml; add `utter_bye:` with a `- text:` under `responses:`",
        id="response",
    ),
    pytest.param(
        Use(*STORY, "action", "action_pay"),
        "action 'action_pay', which domain.yml does not list; add it under `actions:`",
        id="action",
    ),
    pytest.param(
        Use(*STORY, "form", "pay_form"),
        "form 'pay_form', which domain.yml does not define; add it under `forms:`",
        id="form",
    ),
]


@pytest.mark.parametrize("use, text", ERRORS)
def test_undeclared_names_are_errors(use, text):
    [problem] = errors(DOMAIN, [use])
    assert text in problem


@pytest.mark.parametrize(
    "use",
    [
        Use(*STORY, "intent", "greet"),
        Use(*STORY, "action", "utter_greet"),
        Use(*STORY, "action", "utter_faq"),  # a retrieval intent's action, served by utter_faq/...
        Use(*STORY, "action", "action_order"),
        Use(*STORY, "form", "order_form"),
        Use("data/nlu.yml", "", "entity", "size"),
    ],
)
def test_declared_names_pass(use):
    assert errors(DOMAIN, [use]) == []


def test_each_missing_name_is_reported_once_at_its_first_use():
    uses = [Use("a.yml", "story 'x'", "intent", "bye"), Use("b.yml", "rule 'y'", "intent", "bye")]
    [problem] = errors(DOMAIN, uses)
    assert problem.startswith("a.yml: story 'x'")


def test_responses_defined_in_nlu_files_count():
    assert errors(DOMAIN, [Use(*STORY, "action", "utter_chitchat")], {"utter_chitchat/ask_name"}) == []


def test_unused_intents_and_responses_are_warnings():
    uses = [
        Use(*STORY, "intent", "greet"),
        Use(*STORY, "action", "utter_greet"),
        Use(*STORY, "action", "utter_faq"),
    ]
    found = warnings(DOMAIN, uses)
    assert found[0] == (
        "domain.yml: intent(s) faq, order have no examples and no story or rule; the model cannot predict "
        "them (add examples, or remove them from the domain)."
    )
    assert "response(s) utter_unused are not used" in found[1]
    assert (
        warnings(
            DOMAIN,
            uses
            + [
                Use(*STORY, "intent", "faq"),
                Use(*STORY, "intent", "order"),
                Use(*STORY, "action", "utter_unused"),
            ],
        )
        == []
    )
