"""Checks on a whole Rasa project before any training (pure: plain facts in, sentences out).

What ``rasa data validate`` looks for, judged the way a nightly job needs it: an intent, entity, action,
response or form that the data uses but the domain does not declare is an **error** (training would
fail, or the assistant would break at run time); what the domain declares but nothing uses is a
**warning** (as Rasa warns). ``rasa.project`` collects the facts from Rasa's own objects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

UTTER_PREFIX = "utter_"
RESPONSE_DELIMITER = "/"  # utter_faq/ask_hours: a retrieval intent's response


@dataclass(frozen=True)
class DomainFacts:
    file: str
    intents: frozenset[str]
    entities: frozenset[str]
    actions: frozenset[str]  # every action name the domain knows: custom, responses, forms, Rasa's defaults
    responses: frozenset[str]
    forms: frozenset[str]
    default_intents: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Use:
    """One place where the data names something: ``kind`` is intent, entity, action or form."""

    file: str
    block: str  # "story 'greet'" / "rule 'faq'"; "" for an NLU example
    kind: str
    name: str


def _response_actions(responses: frozenset[str] | set[str]) -> set[str]:
    """Responses and, for retrieval responses (``utter_faq/x``), the action serving them (``utter_faq``)."""
    return set(responses) | {r.split(RESPONSE_DELIMITER)[0] for r in responses}


def _where(use: Use) -> str:
    return f"{use.file}: {use.block} uses" if use.block else f"{use.file}: examples use"


def _missing(use: Use, domain: DomainFacts, responses: set[str]) -> str | None:
    """The sentence for a use the domain does not declare, else None."""
    d = domain.file
    if use.kind == "intent" and use.name not in domain.intents:
        return f"{_where(use)} intent '{use.name}', which {d} does not list; add it under `intents:` in {d}."
    if use.kind == "entity" and use.name not in domain.entities:
        return f"{_where(use)} entity '{use.name}', which {d} does not list; add it under `entities:` in {d}."
    if use.kind == "form" and use.name not in domain.forms:
        return f"{_where(use)} form '{use.name}', which {d} does not define; add it under `forms:` in {d}."
    if use.kind != "action":
        return None
    if use.name.startswith(UTTER_PREFIX):
        if use.name in responses:
            return None
        return (
            f"{_where(use)} response '{use.name}', which has no text in {d}; add `{use.name}:` with a "
            f"`- text:` under `responses:` in {d} (or fix the name)."
        )
    if use.name in domain.actions:
        return None
    return f"{_where(use)} action '{use.name}', which {d} does not list; add it under `actions:` in {d}."


def errors(domain: DomainFacts, uses: list[Use], data_responses: set[str] | None = None) -> list[str]:
    """One sentence per name the data uses but the domain does not declare (first place of each)."""
    responses = _response_actions(domain.responses | (data_responses or set()))
    seen: set[tuple[str, str]] = set()
    problems = []
    for use in uses:
        key = (use.kind, use.name)
        if key in seen:
            continue
        problem = _missing(use, domain, responses)
        if problem:
            seen.add(key)
            problems.append(problem)
    return problems


def warnings(domain: DomainFacts, uses: list[Use], data_responses: set[str] | None = None) -> list[str]:
    """What the domain declares but no example, story or rule uses (Rasa warns about the same)."""
    used = defaultdict(set)
    for use in uses:
        used[use.kind].add(use.name)
    unused_intents = sorted(domain.intents - used["intent"] - domain.default_intents)
    served = _response_actions(used["action"])
    declared = {r for r in domain.responses | (data_responses or set()) if r.startswith(UTTER_PREFIX)}
    unused_responses = sorted(r for r in declared if r.split(RESPONSE_DELIMITER)[0] not in served)
    found = []
    if unused_intents:
        found.append(
            f"{domain.file}: intent(s) {', '.join(unused_intents)} have no examples and no story or rule; "
            "the model cannot predict them (add examples, or remove them from the domain)."
        )
    if unused_responses:
        found.append(
            f"{domain.file}: response(s) {', '.join(unused_responses[:8])}"
            f"{' and more' if len(unused_responses) > 8 else ''} are not used in any story or rule "
            "(forms and custom actions may still send them)."
        )
    return found
