"""Rasa's side of annotation: the names an annotator may use, from Rasa's Domain and the project's NLU data,
and annotated examples written as Rasa NLU YAML by Rasa's own writer (entities in Rasa's markup).

``decide/labeling.py`` builds the labeling config from the ``Schema`` made here and checks each example
against it; ``live/annotated.py`` puts the YAML on disk (or on a git branch).
"""

from __future__ import annotations

from collections.abc import Iterable

from nlu_mlflow.decide.labeling import RETRIEVAL_DELIMITER, EntityKind, Example, Schema

UTTER = "utter_"


def schema(project, nlu=None) -> Schema:
    """The intents (a retrieval intent as each of its sub-intents) and entities (with roles and groups) of
    ``project`` (``rasa.project.Project``); ``nlu`` (``rasa.data.NluData``) adds the sub-intents only its
    examples or responses name."""
    from rasa.shared.core.constants import DEFAULT_INTENTS

    domain = project.domain
    retrieval = set(domain.retrieval_intents)
    responses = set(domain.responses) | (set(nlu.training_data.responses) if nlu is not None else set())
    sub_intents = {
        r.removeprefix(UTTER) for r in responses if r.startswith(UTTER) and RETRIEVAL_DELIMITER in r
    }
    if nlu is not None:
        sub_intents |= {_full_intent(m) for m in nlu.training_data.intent_examples}
    intents = []
    for intent in sorted(set(domain.intents) - set(DEFAULT_INTENTS)):
        subs = sorted(s for s in sub_intents if s.split(RETRIEVAL_DELIMITER)[0] == intent)
        intents += subs if (intent in retrieval or subs) else [intent]
    properties = domain.entity_properties
    entities = tuple(
        EntityKind(name, tuple(properties.roles.get(name, ())), tuple(properties.groups.get(name, ())))
        for name in sorted(domain.entities)
    )
    return Schema(tuple(intents), entities, str(project.domain_path))


def _full_intent(message) -> str:
    return message.get("intent_response_key") or message.get("intent") or ""


def nlu_yaml(examples: Iterable[Example]) -> str:
    """``examples`` as Rasa NLU YAML, by Rasa's ``RasaYAMLWriter`` (entities, roles and groups as markup)."""
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [
        Message.build(example.text, example.intent, [_entity(e) for e in example.entities])
        for example in examples
    ]
    return TrainingData(training_examples=messages).nlu_as_yaml()


def _entity(entity: dict) -> dict:
    kept = {k: entity[k] for k in ("start", "end", "value", "entity") if k in entity}
    return {**kept, **{k: entity[k] for k in ("role", "group") if entity.get(k)}}


def read_markup(text: str) -> tuple[str, list[dict]]:
    """A text in Rasa's entity markup (``two [large](size) pizzas``) as plain text and entities."""
    from rasa.shared.nlu.training_data.entities_parser import (
        find_entities_in_training_example,
        replace_entities,
    )

    return replace_entities(text), find_entities_in_training_example(text)


def markup(example: Example) -> str:
    """The example's text with its entities in Rasa's markup (what a person edits in an export file)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message

    message = Message.build(example.text, example.intent, [_entity(e) for e in example.entities])
    return RasaYAMLWriter.generate_message(message)
