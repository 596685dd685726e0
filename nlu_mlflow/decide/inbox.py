"""The inbox's rules: which live messages a person should look at first, and why.

A page of tracker-store events (user messages, and the fallback actions that answered them) is folded into one
``ItemDelta`` per unique masked text; ``merge`` adds a delta to what the inbox already holds. Reasons:

- ``fallback``: the assistant fell back (the ``nlu_fallback`` intent, or a fallback action answered the
  message);
- ``low_margin``: the top two intents were closer than the margin;
- ``outdated_disagrees``: the model that answered is no longer production and today's production parses the
  text to another intent (set after the production parse, ``disagreement``);
- ``frequent``: sent at least ``frequent`` times.

``score`` orders the open items: the sum of the reasons' weights, plus log10 of the count.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from nlu_mlflow.decide import masking

FALLBACK = "fallback"
LOW_MARGIN = "low_margin"
OUTDATED_DISAGREES = "outdated_disagrees"
FREQUENT = "frequent"
FLIP = "flip"  # the replay of live traffic: the candidate answers it with another intent than production
IN_TRAINING_DATA = "in_training_data"  # why an item is skipped rather than queued
WEIGHTS = {FALLBACK: 3.0, FLIP: 3.0, OUTDATED_DISAGREES: 2.5, LOW_MARGIN: 2.0, FREQUENT: 1.0}
RANKING_KEPT = 5  # intents kept of Rasa's intent ranking (confidences of the rest add little)
CACHE_SIZE = 50_000  # (text, model) pairs whose masking and reasons are remembered across pages
USER, ACTION = "user", "action"


@dataclass(frozen=True)
class Rules:
    """The workflow file's ``inbox:`` settings that decide what is masked and queued."""

    margin: float = 0.1
    frequent: int = 5
    mask: bool = True
    sensitive_entities: frozenset[str] = frozenset()
    fallback_intents: frozenset[str] = frozenset({"nlu_fallback"})
    fallback_actions: frozenset[str] = frozenset({"action_default_fallback", "action_two_stage_fallback"})


@dataclass
class ItemDelta:
    """What one page of events adds to one unique (masked) text."""

    key: str
    text: str
    count: int = 0
    first_seen: float = math.inf
    last_seen: float = -math.inf
    channels: set[str] = field(default_factory=set)
    parse: dict | None = None  # the latest served parse: model_id, intent, confidence, ranking, entities
    parse_seen: float = -math.inf
    reasons: set[str] = field(default_factory=set)
    days: dict[str, int] = field(default_factory=dict)
    senders: dict[str, int] = field(default_factory=dict)


@dataclass
class Page:
    """A folded page: deltas by key, the event ids seen, and how many events could not be read."""

    deltas: dict[str, ItemDelta] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    messages: int = 0
    malformed: int = 0


class Folder:
    """Folds event rows page by page. A fallback action is tied to its sender's last message, in this page or
    the one before. Memory: two pages' senders and a bounded cache of (text, model) -> masked text, reasons
    and served parse (the same text parsed by the same model gives the same parse), shared by every item
    delta that refers to it: no decoded event outlives its row."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.recent: dict[str, tuple[str, str]] = {}  # sender -> (key, masked text) in this page
        self.before: dict[str, tuple[str, str]] = {}  # ... in the page before
        self._days: dict[float, str] = {}  # UTC day number -> "YYYY-MM-DD"
        # (raw text, model_id) -> (key, masked text, served parse, reasons, (key, masked text))
        self._seen: dict[tuple, tuple] = {}

    def fold(self, rows: Iterable[tuple], into: Page | None = None) -> Page:
        """``rows``: (id, sender_id, type_name, timestamp, action_name, data) in id order, added to ``into``
        (several pages read make one batch to record; ``finish`` it before recording)."""
        page = into if into is not None else Page()
        self.before, self.recent = self.recent, {}
        if len(self._seen) > CACHE_SIZE:
            self._seen.clear()
        for event_id, sender, type_name, timestamp, action_name, data in rows:
            page.event_ids.append(event_id)
            if type_name == ACTION:
                self._fallback(page, sender, action_name)
                continue
            try:
                self._user(page, sender, timestamp, data)
            except (ValueError, TypeError, KeyError, AttributeError):
                page.malformed += 1
        return page

    def _fallback(self, page: Page, sender: str, action_name: str | None) -> None:
        if action_name not in self.rules.fallback_actions:
            return
        last = self.recent.get(sender) or self.before.get(sender)
        if last is not None:
            page.deltas.setdefault(last[0], ItemDelta(*last)).reasons.add(FALLBACK)

    def _user(self, page: Page, sender: str, timestamp: float | None, data: str) -> None:
        """One user message (the hot path of collect: kept lean, with the (text, model) cache)."""
        event = _loads(data)
        metadata = event.get("metadata")
        model_id = metadata.get("model_id") if metadata else None
        # a message no model stamped is read for itself: another model may have parsed the same text
        cached = self._seen.get((event["text"], model_id)) if model_id is not None else None
        key, text, served, found, pair = cached or self._read(event, model_id)
        when = timestamp if timestamp is not None else float(event.get("timestamp") or 0.0)
        delta = page.deltas.get(key)
        if delta is None:
            delta = page.deltas[key] = ItemDelta(key, text)
        delta.count += 1
        if when < delta.first_seen:
            delta.first_seen = when
        if when >= delta.last_seen:
            delta.last_seen = delta.parse_seen = when
            delta.parse = served
        channel = event.get("input_channel")
        if channel:
            delta.channels.add(channel)
        on_day = self._days.get(when // 86400) or self._day(when)
        days, senders = delta.days, delta.senders
        days[on_day] = days.get(on_day, 0) + 1
        senders[sender] = senders.get(sender, 0) + 1
        if found:
            delta.reasons.update(found)
        page.messages += 1
        self.recent[sender] = pair

    def _read(self, event: dict, model_id: str | None) -> tuple:
        raw, parse = event["text"], event.get("parse_data") or {}
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("a user event without text")
        key, text, kept = self._mask(raw, parse.get("entities") or [])
        found = reasons(
            (parse.get("intent") or {}).get("name"), parse.get("intent_ranking") or [], self.rules
        )
        known = (key, text, _served(model_id, parse, kept), found, (key, text))
        if model_id is not None:
            self._seen[(raw, model_id)] = known
        return known

    def _day(self, when: float) -> str:
        found = self._days[when // 86400] = day(when)
        return found

    def _mask(self, raw: str, entities: list) -> tuple[str, str, tuple]:
        if not self.rules.mask:
            return normalise(raw), raw, tuple(masking.kept(e) for e in entities)
        done = masking.mask(raw, entities, self.rules.sensitive_entities)
        return normalise(done.text), done.text, done.entities


def _loads(data: str) -> dict:
    """An event's JSON: orjson (a third of json's time: the bulk of collect), or json where orjson refuses
    what Python's json writes (NaN, Infinity)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _served(model_id: str | None, parse: dict, entities: tuple) -> dict:
    intent = parse.get("intent") or {}
    ranking = [
        {"name": r.get("name"), "confidence": r.get("confidence")}
        for r in (parse.get("intent_ranking") or [])[:RANKING_KEPT]
    ]
    return {
        "model_id": model_id,
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "ranking": ranking,
        "entities": list(entities),
    }


def normalise(text: str) -> str:
    """The inbox's key for a text: lower case, runs of white space as one space, trimmed."""
    return " ".join(text.lower().split())


def day(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")


def reasons(intent: str | None, ranking: list[dict], rules: Rules) -> set[str]:
    """The reasons one served parse gives to look at its message."""
    found = set()
    if intent in rules.fallback_intents:
        found.add(FALLBACK)
    if len(ranking) >= 2:
        first = second = -math.inf
        for entry in ranking:
            confidence = entry.get("confidence") or 0.0
            if confidence > first:
                first, second = confidence, first
            elif confidence > second:
                second = confidence
        if first - second < rules.margin:
            found.add(LOW_MARGIN)
    return found


def disagreement(served_intent: str | None, production_intent: str | None) -> bool:
    """Today's production parses a message answered by an older model to another intent."""
    return production_intent is not None and production_intent != served_intent


def score(item_reasons: Iterable[str], count: int) -> float:
    return sum(WEIGHTS.get(r, 0.0) for r in set(item_reasons)) + math.log10(max(count, 1))


def with_frequency(item_reasons: Iterable[str], count: int, rules: Rules) -> list[str]:
    found = set(item_reasons)
    if count >= rules.frequent:
        found.add(FREQUENT)
    return sorted(found)


def open_state(item_reasons: Iterable[str]) -> str:
    """An open item with a reason waits in the queue; one without is merely new."""
    return "queued" if set(item_reasons) - {IN_TRAINING_DATA} else "new"


def merged(existing: dict | None, delta: ItemDelta, rules: Rules, known: bool, versions: dict) -> dict | None:
    """The item's new column values once ``delta`` is added to ``existing`` (None: a new item).

    ``known``: the text is already in the training data (a new item is then skipped, not queued);
    ``versions``: model_id -> registered version, where known. None when there is nothing to record (a
    fallback action for a message the inbox does not hold). Of an existing item, only what changed: the
    served parse is replaced only when another model answered (the same model parses a text the same way)."""
    if existing is None and delta.count == 0:
        return None
    base = existing or {
        "count": 0,
        "first_seen": math.inf,
        "last_seen": -math.inf,
        "channels": [],
        "reasons": [],
    }
    count = base["count"] + delta.count
    item_reasons = with_frequency(set(base["reasons"]) | delta.reasons, count, rules)
    values = {
        "count": count,
        "first_seen": min(base["first_seen"], delta.first_seen),
        "last_seen": max(base["last_seen"], delta.last_seen),
        "score": score(item_reasons, count),
        "state": _state(existing, item_reasons, known),
    }
    channels = sorted(set(base["channels"]) | delta.channels)
    if existing is None or channels != base["channels"]:
        values["channels"] = channels
    if existing is None or item_reasons != base["reasons"]:
        values["reasons"] = item_reasons
    parse = delta.parse
    newer = parse is not None and delta.parse_seen >= base["last_seen"]
    if parse is not None and newer and (existing is None or existing.get("model_id") != parse["model_id"]):
        values.update(parse, model_version=versions.get(parse["model_id"]))
    if existing is None:
        values.update(key=delta.key, text=delta.text)
    return values


def _state(existing: dict | None, item_reasons: list[str], known: bool) -> str:
    if existing is None:
        return "skipped" if known else open_state(item_reasons)
    if existing["state"] in ("new", "queued"):
        return open_state(item_reasons)
    return existing["state"]  # pushed, annotated, written or skipped: not queued again
