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


def conflicting_texts(data: NluData) -> list[str]:
    """The same text (ignoring case and spacing) under two intents."""
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for file, part in data.parts:
        for message in part.intent_examples:
            seen[normalized_text(message.get("text"))].setdefault(message.get("intent"), file)
    problems = []
    for text, intents in sorted(seen.items()):
        if len(intents) > 1:
            where = ", ".join(f"'{i}' in {f}" for i, f in sorted(intents.items()))
            problems.append(
                f"example '{text}' is labelled with two intents ({where}); keep it under one intent only."
            )
    return problems


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
