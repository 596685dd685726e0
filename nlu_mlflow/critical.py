"""Critical utterances: a must-pass suite every candidate model is scored on.

``parse_suite`` checks a suite file and turns it into records (pure); ``load_suite`` only reads the
file. ``score`` compares Rasa parse results with the suite (pure) and returns the per-utterance
table plus the ``critical_pass_rate`` / ``critical_failures`` metrics. The file format is described
in docs/critical-utterances.md; data/pizza/critical.yml is an example.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from nlu_mlflow.constants import CRITICAL_FAILURES, CRITICAL_PASS_RATE
from nlu_mlflow.errors import InputError

SUPPORTED_VERSION = 1
TOP_KEYS = ("version", "utterances")
ENTRY_KEYS = ("text", "intent", "entities", "min_confidence")
ENTITY_KEYS = ("entity", "value")
COMMAND_PREFIX = "/"  # Rasa reads "/intent" texts as commands and skips the NLU model
PREDICTED_ENTITY_KEYS = ("entity", "value", "start", "end", "extractor")
TABLE_COLUMNS = (
    "text",
    "expected_intent",
    "predicted_intent",
    "confidence",
    "expected_entities",
    "predicted_entities",
    "passed",
    "reason",
)


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


@dataclass(frozen=True, eq=False)  # eq=False: a DataFrame field cannot be compared or hashed as a tuple
class CriticalResult:
    table: pd.DataFrame  # one row per utterance, TABLE_COLUMNS
    pass_rate: float
    failures: int

    def metrics(self) -> dict[str, float]:
        return {CRITICAL_PASS_RATE: self.pass_rate, CRITICAL_FAILURES: float(self.failures)}


# --- reading a suite ---------------------------------------------------------------------------


def load_suite(path: Path | str, known_intents: set[str] | None) -> CriticalSuite:
    """Read and check a suite file; see ``parse_suite``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file; pass an existing critical utterances file "
            "such as data/pizza/critical.yml."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc}); save it as a UTF-8 YAML file.") from None
    return parse_suite(text, str(path), known_intents)


def parse_suite(text: str, source: str, known_intents: set[str] | None) -> CriticalSuite:
    """Check a suite's YAML text and return its records.

    ``known_intents`` are the training data's intents (``None`` skips that check). Raises
    ``InputError`` with one sentence per problem found anywhere in the file.
    """
    document = _load_yaml(text, source)
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


def texts(suite: CriticalSuite) -> list[str]:
    return [u.text for u in suite.utterances]


def _load_yaml(text: str, source: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise InputError(f"{source}: not valid YAML ({problem}{at}); fix the YAML syntax there.") from None
    if not isinstance(document, dict):
        got = "is empty" if document is None else f"holds {_kind(document)}, not a mapping"
        raise InputError(
            f"{source}: {got}; start the file with `utterances:` "
            "followed by a list of entries with `text` and `intent`."
        )
    return document


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


# --- scoring -------------------------------------------------------------------------------------


def score(suite: CriticalSuite, parses: list[dict]) -> CriticalResult:
    """Compare Rasa parse results (``processor.parse_message`` output, aligned with
    ``suite.utterances``) with the suite's expectations."""
    if len(parses) != len(suite.utterances):
        raise ValueError(
            f"{suite.path}: got {len(parses)} parse results for {len(suite.utterances)} utterances."
        )
    rows = [score_row(u, p) for u, p in zip(suite.utterances, parses, strict=True)]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype({"confidence": float, "passed": bool})
    failures = int((~table["passed"]).sum())
    pass_rate = float(table["passed"].mean()) if len(table) else 1.0
    return CriticalResult(table, pass_rate, failures)


def score_row(utterance: CriticalUtterance, parse: dict) -> dict:
    """One table row: what was expected, what Rasa predicted, and why it failed ("" when it passed)."""
    intent, confidence = predicted_intent(parse)
    entities = list(parse.get("entities") or [])
    reasons = failure_reasons(utterance, intent, confidence, entities)
    return {
        "text": utterance.text,
        "expected_intent": utterance.intent,
        "predicted_intent": intent,
        "confidence": confidence,
        "expected_entities": json.dumps([{"entity": e, "value": v} for e, v in utterance.entities]),
        "predicted_entities": json.dumps([_entity_view(e) for e in entities], default=str),
        "passed": not reasons,
        "reason": "; ".join(reasons),
    }


def predicted_intent(parse: dict) -> tuple[str | None, float]:
    intent = parse.get("intent") or {}
    confidence = intent.get("confidence")
    return intent.get("name"), 0.0 if confidence is None else float(confidence)


def failure_reasons(
    utterance: CriticalUtterance, intent: str | None, confidence: float, entities: list[dict]
) -> list[str]:
    """Why a prediction fails the utterance; empty when it passes.

    The confidence floor is only checked when the intent is right (it is the predicted intent's
    confidence). Every expected entity must be among the predictions; extra predictions are fine.
    """
    reasons = []
    if intent != utterance.intent:
        shown = f"intent '{intent}'" if intent else "no intent"
        reasons.append(f"predicted {shown}, expected '{utterance.intent}'")
    elif utterance.min_confidence is not None and confidence < utterance.min_confidence:
        reasons.append(f"confidence {_below(confidence, utterance.min_confidence)}")
    found = {(e.get("entity"), _normalized(e.get("value"))) for e in entities}
    reasons += [
        f"missing entity {entity}='{value}'"
        for entity, value in utterance.entities
        if (entity, _normalized(value)) not in found
    ]
    return reasons


def _below(confidence: float, floor: float) -> str:
    """'0.21 below 0.50', with more digits where two decimals would show equal numbers."""
    digits = 2
    while digits < 6 and f"{confidence:.{digits}f}" == f"{floor:.{digits}f}":
        digits += 1
    return f"{confidence:.{digits}f} below {floor:.{digits}f}"


def _normalized(value: object) -> str:
    return str(value).strip().lower()


def _entity_view(entity: dict) -> dict:
    return {k: entity[k] for k in PREDICTED_ENTITY_KEYS if k in entity}
