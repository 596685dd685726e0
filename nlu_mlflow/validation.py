"""Checks on training and test data that must pass before any training starts.

Each check returns a list of problems, one sentence each, naming the file, the item and the fix.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from nlu_mlflow.data import NluData, normalized_text


def too_few_examples(data: NluData, minimum: int) -> list[str]:
    counts = Counter(m.get("intent") for m in data.examples)
    return [
        f"{data.source}: intent '{intent}' has {n} example(s), fewer than the {minimum} needed; "
        f"add examples or remove the intent."
        for intent, n in sorted(counts.items())
        if n < minimum
    ]


def broken_annotations(data: NluData) -> list[str]:
    """Examples where Rasa's entity syntax did not parse: brackets are left in the text."""
    problems = []
    for file, part in data.parts:
        for message in part.intent_examples:
            text = message.get("text")
            if "[" in text or "]" in text:
                problems.append(
                    f"{file}: example '{text}' (intent '{message.get('intent')}') has a broken entity "
                    f"annotation; write entities as [text](entity_type) or "
                    f'[text]{{"entity": "type", "value": "v"}}.'
                )
    return problems


def _texts_by_intent(data: NluData, key) -> dict[str, dict[str, str]]:
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for file, part in data.parts:
        for message in part.intent_examples:
            seen[key(message.get("text"))].setdefault(message.get("intent"), file)
    return seen


def _where(intents: dict[str, str]) -> str:
    return ", ".join(f"'{i}' in {f}" for i, f in sorted(intents.items()))


def conflicting_texts(data: NluData) -> list[str]:
    """The same text (ignoring runs of spaces) under two intents: an error."""
    seen = _texts_by_intent(data, lambda text: " ".join(text.split()))
    return [
        f"example '{text}' is labelled with two intents ({_where(intents)}); keep it under one intent only."
        for text, intents in sorted(seen.items())
        if len(intents) > 1
    ]


def case_conflicts(data: NluData) -> list[str]:
    """Texts that differ only in letter case under two intents: a warning (most featurizers lowercase)."""
    exact = _texts_by_intent(data, lambda text: " ".join(text.split()))
    errors = {normalized_text(text) for text, intents in exact.items() if len(intents) > 1}
    seen = _texts_by_intent(data, normalized_text)
    return [
        f"examples '{text}' differ only in case but are labelled with two intents ({_where(intents)}); "
        "featurizers that lowercase see one text with two labels."
        for text, intents in sorted(seen.items())
        if len(intents) > 1 and text not in errors
    ]


def unknown_test_intents(train: NluData, test: NluData) -> list[str]:
    known = {m.get("intent") for m in train.examples}
    counts = Counter(m.get("intent") for m in test.examples if m.get("intent") not in known)
    return [
        f"{test.source}: intent '{intent}' ({n} test example(s)) does not occur in the training data "
        f"{train.source}; add training examples for it or remove it from the test data."
        for intent, n in sorted(counts.items())
    ]


def check_training_data(data: NluData, min_examples: int, allow_conflicts: bool = False) -> list[str]:
    problems = broken_annotations(data) + too_few_examples(data, min_examples)
    if not allow_conflicts:
        problems += conflicting_texts(data)
    return problems


def check_test_data(train: NluData, test: NluData) -> list[str]:
    return broken_annotations(test) + unknown_test_intents(train, test)
