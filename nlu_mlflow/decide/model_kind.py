"""Which kind of Rasa model may replace which in a running server (a pure decision).

A full assistant (NLU and dialogue: domain, stories, policies) answers conversations; an NLU-only model
only parses messages. Loading an NLU-only model into a server that runs a full assistant would silence
the assistant (Rasa answers no conversation without a dialogue model), so it is refused; the reverse,
a full assistant replacing an NLU-only model, adds dialogue and is allowed.
"""

from __future__ import annotations

from nlu_mlflow import constants as c

KIND_NLU = "nlu"  # `rasa train nlu`: intents, entities, retrieval intents
KIND_FULL = "full"  # `rasa train` with a domain and stories or rules: NLU and dialogue policies

DESCRIPTION = {KIND_NLU: "an NLU-only model", KIND_FULL: "a full assistant (NLU and dialogue)"}


def default_model_name(project_given: bool) -> str:
    """The registered model's name when none is given, however the workflow starts (the workflow file, the
    command line, the MLproject): a whole project trains an assistant, NLU data alone an NLU model."""
    return c.DEFAULT_ASSISTANT_MODEL_NAME if project_given else c.DEFAULT_MODEL_NAME


def describe(kind: str | None) -> str:
    return DESCRIPTION.get(kind or "", "a model of unknown kind")


def load_refusal(new: str | None, served: str | None) -> str | None:
    """Why a model of kind ``new`` must not replace the served one of kind ``served``; None when it may.

    An unknown kind (None: no model served, or an archive Rasa will judge itself) never refuses.
    """
    if new == KIND_NLU and served == KIND_FULL:
        return (
            "it is an NLU-only model and the server runs a full assistant, which would stop answering "
            "conversations; register a model trained with the domain and stories (`rasa train`)"
        )
    return None
