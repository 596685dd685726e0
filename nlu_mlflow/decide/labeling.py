"""What an annotator sees and gives back, as pure functions: the Label Studio labeling config built from the
domain's names, the production parse as a pre-annotation, an annotation's result read back as an NLU example,
and the checks an example must pass before it is written into the training data.

The config has one ``<Text>`` (the masked message), the intents as ``<Choices>`` (a retrieval intent as its
sub-intents, ``faq/opening_hours``: what Rasa trains on), the entities as ``<Labels>`` spans, and for an
entity with roles or groups a per-region ``<Choices>`` shown when a span of that entity is selected.
``rasa/labeling.py`` collects the names from Rasa's Domain and the NLU data.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

TEXT = "text"  # the <Text> name and the task's data key
INTENT = "intent"  # the <Choices> of the intent
ENTITY = "entity"  # the <Labels> of entity spans
ROLE, GROUP = "role", "group"
RETRIEVAL_DELIMITER = "/"
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")  # a masked span (decide/masking.py's placeholders)


@dataclass(frozen=True)
class EntityKind:
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """The names an annotation may use: intents as Rasa trains them (retrieval intents with their
    sub-intent) and entities with their roles and groups; ``domain`` names the file for messages."""

    intents: tuple[str, ...]
    entities: tuple[EntityKind, ...] = ()
    domain: str = "domain.yml"

    def entity(self, name: str | None) -> EntityKind | None:
        return next((e for e in self.entities if e.name == name), None)


@dataclass(frozen=True)
class Example:
    """A labelled message: text, intent, entities ({start, end, value, entity[, role][, group]})."""

    text: str
    intent: str | None
    entities: tuple[dict, ...] = ()
    skipped: bool = False


@dataclass(frozen=True)
class Prediction:
    """A parse as Label Studio's pre-annotation."""

    model_version: str
    score: float
    result: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"model_version": self.model_version, "score": self.score, "result": self.result}


def label_config(schema: Schema) -> str:
    """The labeling config XML for ``schema``."""
    view = ET.Element("View")
    ET.SubElement(view, "Text", name=TEXT, value=f"${TEXT}")
    if schema.entities:
        labels = ET.SubElement(view, "Labels", name=ENTITY, toName=TEXT)
        for kind in schema.entities:
            ET.SubElement(labels, "Label", value=kind.name)
    ET.SubElement(view, "Header", value="Intent")
    choices = ET.SubElement(
        view, "Choices", name=INTENT, toName=TEXT, choice="single-radio", required="true", showInline="false"
    )
    for intent in schema.intents:
        ET.SubElement(choices, "Choice", value=intent)
    for kind in schema.entities:
        for attribute, values in ((ROLE, kind.roles), (GROUP, kind.groups)):
            if values:
                _per_region(view, kind.name, attribute, values)
    return ET.tostring(view, encoding="unicode")


def _per_region(view: ET.Element, entity: str, attribute: str, values: tuple[str, ...]) -> None:
    shown = ET.SubElement(view, "View", visibleWhen="region-selected", whenLabelValue=entity)
    ET.SubElement(shown, "Header", value=f"{attribute} of {entity}")
    choices = ET.SubElement(
        shown, "Choices", name=region_control(attribute, entity), toName=TEXT, perRegion="true"
    )
    for value in values:
        ET.SubElement(choices, "Choice", value=value)


def region_control(attribute: str, entity: str) -> str:
    return f"{attribute}_{entity}"


def chosen_intent(parse: dict, schema: Schema) -> tuple[str | None, float]:
    """The parse's intent as one of the schema's choices, with its confidence: a retrieval intent with the
    response selector's sub-intent, a fallback with the best-ranked intent that is a choice."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    selector = (parse.get("response_selector") or {}).get(name) or {}
    full = (selector.get("response") or {}).get("intent_response_key")
    if full in schema.intents:
        return full, confidence
    if name in schema.intents:
        return name, confidence
    for ranked in parse.get("intent_ranking") or []:
        if ranked.get("name") in schema.intents:
            return ranked["name"], float(ranked.get("confidence") or 0.0)
    return None, confidence


def prediction(parse: dict, schema: Schema, model_version: str) -> Prediction:
    """A parse ({intent, intent_ranking, entities, response_selector}) as a pre-annotation; entities the
    schema lacks or that cover a masked placeholder are left out."""
    text = parse.get("text") or ""
    intent, score = chosen_intent(parse, schema)
    result = []
    if intent is not None:
        result.append(_result(f"{INTENT}-choice", INTENT, "choices", {"choices": [intent]}))
    for i, entity in enumerate(parse.get("entities") or []):
        start, end, name = entity.get("start"), entity.get("end"), entity.get("entity")
        if (
            start is None
            or end is None
            or schema.entity(name) is None
            or _covers_placeholder(text, start, end)
        ):
            continue
        value = {"start": start, "end": end, "text": text[start:end], "labels": [name]}
        result.append(_result(f"e{i}", ENTITY, "labels", value))
        for attribute in (ROLE, GROUP):
            if entity.get(attribute):
                chosen = {"start": start, "end": end, "text": text[start:end], "choices": [entity[attribute]]}
                result.append(_result(f"e{i}", region_control(attribute, name), "choices", chosen))
    return Prediction(model_version, round(score, 4), result)


def _result(region_id: str, from_name: str, kind: str, value: dict) -> dict:
    return {"id": region_id, "from_name": from_name, "to_name": TEXT, "type": kind, "value": value}


def _covers_placeholder(text: str, start: int, end: int) -> bool:
    return any(m.start() < end and start < m.end() for m in PLACEHOLDER.finditer(text))


def example_of(text: str, result: Iterable[dict], skipped: bool = False) -> Example:
    """An annotation's ``result`` (Label Studio's regions) as an example of ``text``."""
    result = list(result)
    intent = next(
        (
            r["value"]["choices"][0]
            for r in result
            if r.get("from_name") == INTENT and r["value"].get("choices")
        ),
        None,
    )
    extra: dict[str | None, dict] = {}  # region id (None: a region without one) -> role/group
    for region in result:
        name = region.get("from_name", "")
        for attribute in (ROLE, GROUP):
            if name.startswith(f"{attribute}_") and region["value"].get("choices"):
                extra.setdefault(region.get("id"), {})[attribute] = region["value"]["choices"][0]
    entities = []
    for region in result:
        if region.get("from_name") != ENTITY or not region["value"].get("labels"):
            continue
        start, end = _trimmed(text, int(region["value"]["start"]), int(region["value"]["end"]))
        entity = {
            "start": start,
            "end": end,
            "value": text[start:end],
            "entity": region["value"]["labels"][0],
        }
        entities.append({**entity, **extra.get(region.get("id"), {})})
    entities.sort(key=lambda e: (e["start"], e["end"]))
    return Example(text, intent, tuple(entities), skipped)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without the spaces a mouse selection often takes along."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def problems(example: Example, schema: Schema, where: str) -> list[str]:
    """Why ``example`` may not be written (one sentence each, naming the fix); [] when it may."""
    if example.skipped:
        return []
    d, found = schema.domain, []
    if not example.intent:
        found.append(f"{where}: no intent chosen; choose one in the annotation tool or skip the message.")
    elif example.intent not in schema.intents:
        base = example.intent.split(RETRIEVAL_DELIMITER)[0]
        fix = (
            f"add a response `utter_{example.intent}` for it in {d}"
            if RETRIEVAL_DELIMITER in example.intent
            else f"add it under `intents:` in {d}"
        )
        found.append(f"{where}: intent '{example.intent}' is not in {d} ({base}); {fix}, or relabel it.")
    for entity in example.entities:
        found += _entity_problems(entity, example.text, schema, where)
    return found


def _entity_problems(entity: dict, text: str, schema: Schema, where: str) -> list[str]:
    name, d = entity.get("entity"), schema.domain
    kind = schema.entity(name)
    if kind is None:
        return [f"{where}: entity '{name}' is not in {d}; add it under `entities:` in {d}, or relabel it."]
    found = []
    for attribute, allowed in ((ROLE, kind.roles), (GROUP, kind.groups)):
        value = entity.get(attribute)
        if value and value not in allowed:
            found.append(
                f"{where}: {attribute} '{value}' of entity '{name}' is not in {d}; add it under "
                f"`entities: - {name}: {attribute}s:` in {d}, or relabel it."
            )
    start, end = entity["start"], entity["end"]
    if _covers_placeholder(text, start, end):
        found.append(
            f"{where}: entity '{name}' covers a masked placeholder ({text[start:end]!r}); a placeholder is "
            "never an entity value: remove the span, or edit the text into a realistic value first."
        )
    elif not 0 <= start < end <= len(text):
        found.append(f"{where}: entity '{name}' span {start}-{end} lies outside the text; fix the span.")
    return found
