"""Critical utterances: the schema of a must-pass suite every candidate model is scored on (pure).

``check_suite`` checks a suite's parsed YAML document and turns it into records; reading the file is
``workflow.inputs.load_suite``'s job, scoring ``critical_score``'s. The file format is described in
docs/critical-utterances.md; data/pizza/critical.yml is an example.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass

from nlu_mlflow.errors import InputError

SUPPORTED_VERSION = 1
TOP_KEYS = ("version", "utterances")
ENTRY_KEYS = ("text", "intent", "entities", "min_confidence")
ENTITY_KEYS = ("entity", "value")
COMMAND_PREFIX = "/"  # Rasa reads "/intent" texts as commands and skips the NLU model


@dataclass(frozen=True)
class CriticalUtterance:
    text: str
    intent: str
    entities: tuple[tuple[str, str], ...] = ()  # (entity type, value) pairs that must be extracted
    min_confidence: float | None = None

    def record(self) -> dict:
        """Canonical form for the digest: entity order and file key order do not matter."""
        return {
            "text": self.text,
            "intent": self.intent,
            "entities": sorted([entity, value] for entity, value in self.entities),
            "min_confidence": self.min_confidence,
        }


@dataclass(frozen=True)
class CriticalSuite:
    path: str
    utterances: tuple[CriticalUtterance, ...]

    @property
    def digest(self) -> str:
        """Content digest independent of key and entry order (16 hex chars of SHA-256)."""
        records = sorted(json.dumps(u.record(), sort_keys=True) for u in self.utterances)
        return hashlib.sha256("\n".join(records).encode("utf-8")).hexdigest()[:16]

    def texts(self) -> list[str]:
        return [u.text for u in self.utterances]


def check_suite(document: object, source: str, known_intents: set[str] | None) -> CriticalSuite:
    """Check a suite's parsed YAML document and return its records.

    ``known_intents`` are the training data's intents (``None`` skips that check). Raises
    ``InputError`` with one sentence per problem found anywhere in the file.
    """
    if not isinstance(document, dict):
        got = "is empty" if document is None else f"holds {_kind(document)}, not a mapping"
        raise InputError(
            f"{source}: {got}; start the file with `utterances:` "
            "followed by a list of entries with `text` and `intent`."
        )
    problems = _document_problems(document, source)
    entries = document.get("utterances")
    if not isinstance(entries, list):
        raise InputError(problems)
    utterances = []
    for index, entry in enumerate(entries, start=1):
        found = entry_problems(entry, _where(source, index, entry), known_intents)
        problems += found
        if not found:
            utterances.append(_utterance(entry))
    if problems:
        raise InputError(problems)
    return CriticalSuite(source, tuple(utterances))


def _document_problems(document: dict, source: str) -> list[str]:
    problems = _unknown_keys(document, TOP_KEYS, f"{source}: top-level")
    if "version" in document and (document["version"] != SUPPORTED_VERSION or _is_bool(document["version"])):
        problems.append(
            f"{source}: version {document['version']!r} is not supported; "
            f"write `version: {SUPPORTED_VERSION}` or leave it out."
        )
    if not isinstance(document.get("utterances"), list):
        got = "is missing" if "utterances" not in document else f"is {_kind(document['utterances'])}"
        problems.append(
            f"{source}: the `utterances:` list {got}; add a top-level `utterances:` list of entries "
            "with `text` and `intent`."
        )
    return problems


def entry_problems(entry: object, where: str, known_intents: set[str] | None) -> list[str]:
    """Everything wrong with one suite entry, one sentence each; ``where`` names file and entry."""
    if not isinstance(entry, dict):
        return [
            f"{where} is {_kind(entry)}, not a mapping; write it as `- text: ...` with `intent: ...` below."
        ]
    return (
        _unknown_keys(entry, ENTRY_KEYS, where)
        + _text_problems(entry, where)
        + _intent_problems(entry, where, known_intents)
        + _entities_problems(entry, where)
        + _confidence_problems(entry, where)
    )


def _text_problems(entry: dict, where: str) -> list[str]:
    if "text" not in entry:
        return [f"{where}: `text` is missing; add the utterance as `text: ...`."]
    text = entry["text"]
    if not isinstance(text, str) or not text.strip():
        return [f'{where}: `text` is {_kind(text)}; write the utterance as quoted text, e.g. `text: "yes"`.']
    if text.strip().startswith(COMMAND_PREFIX):
        return [
            f"{where}: `text` starts with '{COMMAND_PREFIX}', which Rasa reads as an intent command without "
            f"running the model; remove the leading '{COMMAND_PREFIX}'."
        ]
    return []


def _intent_problems(entry: dict, where: str, known_intents: set[str] | None) -> list[str]:
    if "intent" not in entry:
        return [f"{where}: `intent` is missing; add the expected intent as `intent: ...`."]
    intent = entry["intent"]
    if not isinstance(intent, str) or not intent.strip():
        return [
            f"{where}: `intent` is {_kind(intent)}; write the expected intent's name, e.g. `intent: greet`."
        ]
    if known_intents is not None and intent not in known_intents:
        return [
            f"{where}: intent '{intent}' does not occur in the training data; "
            f"use one of the training intents{_suggestion(intent, known_intents)}."
        ]
    return []


def _entities_problems(entry: dict, where: str) -> list[str]:
    if "entities" not in entry:
        return []
    entities = entry["entities"]
    if not isinstance(entities, list):
        return [
            f"{where}: `entities` is {_kind(entities)}, not a list; write it as a list of "
            "`- {entity: type, value: text}` or remove the key."
        ]
    problems = []
    for number, item in enumerate(entities, start=1):
        problems += _entity_problems(item, f"{where}: entity {number}")
    return problems


def _entity_problems(item: object, where: str) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where} is {_kind(item)}, not a mapping; write it as `{{entity: type, value: text}}`."]
    problems = _unknown_keys(item, ENTITY_KEYS, where)
    entity = item.get("entity")
    if not isinstance(entity, str) or not entity.strip():
        got = "is missing" if "entity" not in item else f"is {_kind(entity)}"
        problems.append(f"{where}: `entity` {got}; write the entity type, e.g. `entity: product`.")
    value = item.get("value")
    if not _is_scalar_value(value):
        got = "is missing" if "value" not in item else f"is {_kind(value)}"
        problems.append(
            f'{where}: `value` {got}; write the expected value as quoted text, e.g. `value: "large"`.'
        )
    return problems


def _confidence_problems(entry: dict, where: str) -> list[str]:
    if "min_confidence" not in entry:
        return []
    value = entry["min_confidence"]
    if _is_number(value) and 0.0 <= value <= 1.0:
        return []
    got = f"{value!r} is outside 0..1" if _is_number(value) else f"is {_kind(value)}"
    return [f"{where}: `min_confidence` {got}; write a number between 0 and 1, e.g. 0.5, or remove the key."]


def _unknown_keys(mapping: dict, allowed: tuple[str, ...], where: str) -> list[str]:
    return [
        f"{where}: unknown key {key!r}; use only {', '.join(allowed)}{_suggestion(str(key), allowed)}."
        for key in mapping
        if key not in allowed
    ]


def _utterance(entry: dict) -> CriticalUtterance:
    entities = tuple((e["entity"].strip(), str(e["value"]).strip()) for e in entry.get("entities", []))
    confidence = entry.get("min_confidence")
    return CriticalUtterance(
        text=entry["text"],
        intent=entry["intent"].strip(),
        entities=entities,
        min_confidence=None if confidence is None else float(confidence),
    )


def _where(source: str, index: int, entry: object) -> str:
    text = entry.get("text") if isinstance(entry, dict) else None
    label = f"'{_shorten(text)}'" if isinstance(text, str) and text.strip() else "no text"
    return f"{source}: entry {index} ({label})"


def _suggestion(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if _is_bool(value):
        return f"the boolean {value} (YAML reads unquoted yes/no/on/off/true/false as booleans)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "blank text" if not value.strip() else f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not _is_bool(value) and not math.isnan(value)


def _is_scalar_value(value: object) -> bool:
    """Entity values are text; numbers are accepted and compared as text, booleans are not."""
    if isinstance(value, str):
        return bool(value.strip())
    return _is_number(value)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
