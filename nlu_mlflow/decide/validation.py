"""Checks on training and test data that must pass before any training starts (pure).

The checks read plain example records (``Examples``), not Rasa objects; ``rasa.data.NluData.examples_view``
builds them. Each check returns a list of problems, one sentence each, naming the file, the item and the fix.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    file: str = ""  # the file it was read from ("" when unknown)


@dataclass(frozen=True)
class Examples:
    """A data set as the checks see it: ``merged`` as trained on, ``as_read`` file by file."""

    source: str  # what the user gave: a file, a folder or a URL
    merged: tuple[Example, ...]
    as_read: tuple[Example, ...]


def normalized_text(text: str) -> str:
    return " ".join(text.lower().split())


def too_few_examples(data: Examples, minimum: int) -> list[str]:
    counts = Counter(e.intent for e in data.merged)
    return [
        f"{data.source}: intent '{intent}' has {n} example(s), fewer than the {minimum} needed; "
        f"add examples or remove the intent."
        for intent, n in sorted(counts.items())
        if n < minimum
    ]


def broken_annotations(data: Examples) -> list[str]:
    """Examples where Rasa's entity syntax did not parse: brackets are left in the text."""
    return [
        f"{e.file}: example '{e.text}' (intent '{e.intent}') has a broken entity "
        f"annotation; write entities as [text](entity_type) or "
        f'[text]{{"entity": "type", "value": "v"}}.'
        for e in data.as_read
        if "[" in e.text or "]" in e.text
    ]


def _texts_by_intent(data: Examples, key: Callable[[str], str]) -> dict[str, dict[str, str]]:
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for e in data.as_read:
        seen[key(e.text)].setdefault(e.intent, e.file)
    return seen


def _where(intents: dict[str, str]) -> str:
    return ", ".join(f"'{i}' in {f}" for i, f in sorted(intents.items()))


def _spaces(text: str) -> str:
    return " ".join(text.split())


def conflicting_texts(data: Examples, as_warning: bool = False) -> list[str]:
    """The same text (ignoring runs of spaces) under two intents: an error, or (``as_warning``, a project
    run) a warning as in ``rasa data validate``; either way the sentence says how to proceed."""
    seen = _texts_by_intent(data, _spaces)
    fix = (
        "Rasa trains on both labels (it only warns); keep it under one intent, or pass --no-allow-conflicts "
        "to stop on this"
        if as_warning
        else "keep it under one intent only, or pass --allow-conflicts to train with it (Rasa only warns)"
    )
    return [
        f"example '{text}' is labelled with two intents ({_where(intents)}); {fix}."
        for text, intents in sorted(seen.items())
        if len(intents) > 1
    ]


def case_conflicts(data: Examples) -> list[str]:
    """Texts that differ only in letter case under two intents: a warning (most featurizers lowercase)."""
    exact = _texts_by_intent(data, _spaces)
    errors = {normalized_text(text) for text, intents in exact.items() if len(intents) > 1}
    seen = _texts_by_intent(data, normalized_text)
    return [
        f"examples '{text}' differ only in case but are labelled with two intents ({_where(intents)}); "
        "featurizers that lowercase see one text with two labels."
        for text, intents in sorted(seen.items())
        if len(intents) > 1 and text not in errors
    ]


def unknown_test_intents(train: Examples, test: Examples) -> list[str]:
    known = {e.intent for e in train.merged}
    counts = Counter(e.intent for e in test.merged if e.intent not in known)
    return [
        f"{test.source}: intent '{intent}' ({n} test example(s)) does not occur in the training data "
        f"{train.source}; add training examples for it or remove it from the test data."
        for intent, n in sorted(counts.items())
    ]


def overlapping_texts(train: Examples, test: Examples) -> list[str]:
    """Test texts that also occur (case- and space-insensitively) in the training data."""
    seen = {normalized_text(e.text) for e in train.merged}
    return sorted({e.text for e in test.merged if normalized_text(e.text) in seen})


def check_training_data(data: Examples, min_examples: int, allow_conflicts: bool = False) -> list[str]:
    problems = broken_annotations(data) + too_few_examples(data, min_examples)
    if not allow_conflicts:
        problems += conflicting_texts(data)
    return problems


def check_test_data(train: Examples, test: Examples) -> list[str]:
    return broken_annotations(test) + unknown_test_intents(train, test)
