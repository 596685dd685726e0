"""Masking personal data in live messages: text in, masked text and what was masked out.

Applied to every message before it leaves the tracker store (inbox, annotation tool, MLflow, logs). Masked
are e-mail addresses, card-like digit runs (13-19 digits, spaces or dashes between), phone-like numbers (7 or
more digits, optionally with +, spaces, dots, dashes, parentheses) and the values of entities the team lists
as sensitive. Each becomes a placeholder in capitals (``[EMAIL]``, ``[CARD]``, ``[PHONE]``, ``[NAME]`` for an
entity ``name``); an entity whose span touches a masked span is dropped, so a placeholder never becomes an
entity value. Other entities keep their labels with offsets moved into the masked text.

Errs towards masking: a date written ``2024-01-05`` has 8 digits and becomes ``[PHONE]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EMAIL = "EMAIL"
CARD = "CARD"
PHONE = "PHONE"
PATTERNS = (
    (EMAIL, re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    (CARD, re.compile(r"(?<![\w+])(?:\d[ -]?){12,18}\d(?!\w)")),
    (PHONE, re.compile(r"(?<!\w)\+?\(?\d[\d ().\-/]{5,}\d(?!\w)")),
)
PHONE_MIN_DIGITS = 7
_MAYBE_PERSONAL = re.compile(r"[\d@]")  # no digit and no @: no pattern can match (the fast path)


@dataclass(frozen=True)
class Masked:
    text: str
    masked: tuple[str, ...]  # the placeholder names, in text order (never the values)
    entities: tuple[dict, ...]  # the entities kept, offsets into ``text``


def placeholder(name: str) -> str:
    return f"[{name.upper()}]"


def mask(text: str, entities: Sequence[dict] = (), sensitive: Iterable[str] = ()) -> Masked:
    """``text`` with personal data replaced by placeholders; ``entities`` (Rasa's, with start/end) moved."""
    sensitive = frozenset(sensitive)
    spans = [
        (e["start"], e["end"], placeholder(e["entity"]))
        for e in entities
        if e.get("entity") in sensitive and _has_span(e, text)
    ]
    if _MAYBE_PERSONAL.search(text):
        spans += _pattern_spans(text)
    if not spans:
        plain = (e for e in entities if e.get("entity") not in sensitive and _has_span(e, text))
        return Masked(text, (), tuple(kept(e) for e in plain))
    chosen = _non_overlapping(spans)
    masked_text, shifts = _replace(text, chosen)
    moved = tuple(
        _moved(e, shifts)
        for e in entities
        if e.get("entity") not in sensitive and _has_span(e, text) and not _touches(e, chosen)
    )
    return Masked(masked_text, tuple(label.strip("[]") for _, _, label in chosen), moved)


def _has_span(entity: dict, text: str) -> bool:
    start, end = entity.get("start"), entity.get("end")
    return isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)


def _pattern_spans(text: str) -> list[tuple[int, int, str]]:
    found = []
    for name, pattern in PATTERNS:
        for match in pattern.finditer(text):
            if name == PHONE and sum(ch.isdigit() for ch in match.group()) < PHONE_MIN_DIGITS:
                continue
            found.append((match.start(), match.end(), placeholder(name)))
    return found


def _non_overlapping(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Earliest first, the longest on a tie; a span overlapping one already chosen is left out."""
    chosen: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if not chosen or start >= chosen[-1][1]:
            chosen.append((start, end, label))
    return chosen


def _replace(text: str, chosen: list[tuple[int, int, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The masked text, and (end of a masked span in the original, shift after it) for moving offsets."""
    parts, shifts, position, shift = [], [], 0, 0
    for start, end, label in chosen:
        parts += [text[position:start], label]
        shift += len(label) - (end - start)
        shifts.append((end, shift))
        position = end
    parts.append(text[position:])
    return "".join(parts), shifts


def _touches(entity: dict, chosen: list[tuple[int, int, str]]) -> bool:
    return any(entity["start"] < end and start < entity["end"] for start, end, _ in chosen)


def _moved(entity: dict, shifts: list[tuple[int, int]]) -> dict:
    shift = 0
    for end, after in shifts:
        if end <= entity["start"]:
            shift = after
    return {**kept(entity), "start": entity["start"] + shift, "end": entity["end"] + shift}


def kept(entity: dict) -> dict:
    """The parts of an entity the inbox keeps (no extractor internals)."""
    keys = ("start", "end", "entity", "value", "role", "group", "confidence_entity")
    return {key: entity[key] for key in keys if key in entity}
