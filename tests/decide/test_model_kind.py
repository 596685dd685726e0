"""Which kind of Rasa model may replace which in a running server."""

import pytest

from nlu_mlflow.decide.model_kind import KIND_FULL, KIND_NLU, describe, load_refusal


@pytest.mark.parametrize(
    ("new", "served", "refused"),
    [
        (KIND_NLU, KIND_FULL, True),  # would silence the assistant
        (KIND_FULL, KIND_NLU, False),  # adds dialogue
        (KIND_FULL, KIND_FULL, False),
        (KIND_NLU, KIND_NLU, False),
        (KIND_NLU, None, False),  # the server runs no model yet
        (None, KIND_FULL, False),  # not a Rasa 3 archive: Rasa refuses it with its own reason
    ],
)
def test_only_an_nlu_model_for_a_full_assistant_is_refused(new, served, refused):
    assert (load_refusal(new, served) is not None) == refused


def test_the_refusal_says_why_and_what_to_do():
    reason = load_refusal(KIND_NLU, KIND_FULL)
    assert "NLU-only" in reason and "full assistant" in reason and "rasa train" in reason


def test_kinds_read_as_words():
    assert [describe(KIND_NLU), describe(KIND_FULL), describe(None)] == [
        "an NLU-only model",
        "a full assistant (NLU and dialogue)",
        "a model of unknown kind",
    ]
