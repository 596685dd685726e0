"""The inbox's steps in order: collect live messages from Rasa's tracker store into the inbox, parse the
outdated ones with today's production model, report counts, forget a sender.

The rules are pure (decide/inbox.py, decide/masking.py); the databases are reached through live/ (the
tracker-store reader, the inbox store); the production model through tracking/ and rasa/.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.decide import conversation_review as review
from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.errors import InputError
from nlu_mlflow.live import tracker_store
from nlu_mlflow.live.inbox_store import OPEN_STATES, Forgotten, InboxStore, PageContext, default_url
from nlu_mlflow.live.tracker_store import TrackerReader, source_id
from nlu_mlflow.workflow.inbox_settings import InboxSettings

logger = logging.getLogger(__name__)

INBOX_URL_ENV = "NLU_MLFLOW_INBOX_URL"
PAGE_SIZE = 5000
OVERLAP = 1000  # event ids re-read behind the watermark (ids committed out of order by several Rasa workers)
REPARSE_BATCH = 256
COMMIT_EVERY = 50_000  # messages (or distinct texts) per inbox transaction: bounds memory, amortises writes


@dataclass(frozen=True)
class Sizes:
    page: int = 5000  # events per read
    overlap: int = 1000
    commit_every: int = COMMIT_EVERY


def open_inbox(inbox_url: str | None = None, tracking_uri: str | None = None) -> InboxStore:
    """The inbox at ``inbox_url``, else ``$NLU_MLFLOW_INBOX_URL``, else inbox.db beside the MLflow store."""
    tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return InboxStore(inbox_url or os.environ.get(INBOX_URL_ENV) or default_url(tracking, Path.cwd()))


@dataclass(frozen=True)
class Production:
    """Today's production model: its registered version, Rasa's model_id, and a batched parser."""

    version: str
    model_id: str | None
    parse: Callable[[Sequence[str]], list[dict]]


@dataclass(frozen=True)
class Collected:
    """What one ``collect`` did: events read (user messages), malformed ones skipped, items added."""

    events: int
    malformed: int
    new_items: int
    pages: int
    last_id: int
    seconds: float
    reparsed: int = 0
    disagreements: int = 0

    def line(self) -> str:
        return (
            f"collected {self.events} message(s) in {self.pages} page(s), {self.new_items} new item(s), "
            f"{self.malformed} malformed event(s) skipped; "
            f"production parsed {self.reparsed} outdated item(s), "
            f"{self.disagreements} disagree; watermark at event {self.last_id}"
        )


def tracker_url(settings: InboxSettings) -> str:
    """The tracker store's URL: ``tracker_store``, else the ``endpoints`` file's section as Rasa reads it."""
    if settings.tracker_store:
        return settings.tracker_store
    if settings.endpoints is None:
        raise InputError(
            "no tracker store given: pass --tracker-store URL or --endpoints endpoints.yml "
            "(or set `inbox: {tracker_store: ...}` in the workflow file)."
        )
    from nlu_mlflow.rasa.endpoints import tracker_store_url

    return tracker_store_url(settings.endpoints)


def run_collect(settings: InboxSettings, tracking_uri: str | None, with_production: bool) -> Collected:
    """``inbox collect``: read new messages into the inbox, then parse outdated items with production."""
    url = tracker_url(settings)
    store = open_inbox(settings.inbox_url, tracking_uri)
    rules = settings.rules()
    sizes = (settings.page_size, settings.overlap, settings.commit_every)
    done = collect(store, url, rules, known_texts(settings.data), *sizes)
    if not with_production:
        return done
    from nlu_mlflow.tracking import runs

    runs.open_store(
        tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or runs.default_tracking_uri(Path.cwd())
    )
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-inbox-") as work:
        found = production(settings.model_name, Path(work))
        if found is None:
            logger.info(
                "no production version of %s yet: outdated messages not re-parsed", settings.model_name
            )
            return done
        parsed, disagree = reparse(store, found, rules)
    return dataclasses.replace(done, reparsed=parsed, disagreements=disagree)


def collect(
    store: InboxStore,
    tracker_url: str,
    rules: rules_of.Rules,
    known_keys: frozenset[str] = frozenset(),
    page_size: int = PAGE_SIZE,
    overlap: int = OVERLAP,
    commit_every: int = COMMIT_EVERY,
) -> Collected:
    """Read the tracker store's new user messages into the inbox, page by page (short reads); every
    ``commit_every`` messages the batch and the watermark after it are committed together, so a crash
    leaves the watermark at the last batch recorded."""
    started, before = time.perf_counter(), store.item_count()
    reader = TrackerReader(tracker_url)
    try:
        reader.check()
        source = source_id(tracker_url)
        mark = store.watermark(source)
        sizes = Sizes(page_size, overlap, commit_every)
        totals = _read_pages(store, reader, source, mark.last_id, PageContext(rules, known_keys), sizes)
    finally:
        reader.dispose()
    events, malformed, pages = totals
    return Collected(
        events, malformed, store.item_count() - before, pages, store.watermark(source).last_id,
        time.perf_counter() - started,
    )  # fmt: skip


def _read_pages(store, reader, source, last_id, context, sizes: Sizes) -> tuple[int, int, int]:
    """Fold pages into batches; record each batch with the watermark after it (one transaction)."""
    seen = store.seen_ids(source)
    folder = rules_of.Folder(context.rules)
    events = malformed = pages = 0
    batch, since = None, last_id
    for rows in reader.pages(max(last_id - sizes.overlap, 0), sizes.page, context.rules.fallback_actions):
        batch = folder.fold((row for row in rows if row[0] not in seen), batch)
        last_id = max(last_id, rows[-1][0])
        seen = {i for i in seen.union(batch.event_ids[-sizes.page :]) if i > last_id - sizes.overlap}
        pages += 1
        if batch.messages >= sizes.commit_every or len(batch.deltas) >= sizes.commit_every:
            store.record_page(source, batch, (since, last_id, seen), context)
            events, malformed, batch, since = (
                events + batch.messages,
                malformed + batch.malformed,
                None,
                last_id,
            )
    if batch is not None:
        store.record_page(source, batch, (since, last_id, seen), context)
        events, malformed = events + batch.messages, malformed + batch.malformed
    return events, malformed, pages


def production(model_name: str, work: Path) -> Production | None:
    """Today's production model of ``model_name`` (alias production), loaded for parsing; None if none."""
    from nlu_mlflow.rasa import fast_load, inference
    from nlu_mlflow.rasa.archive import archive_model_id
    from nlu_mlflow.tracking import models, registry

    version = registry.alias_holder(model_name)
    if version is None:
        return None
    archive = models.archive_path(version.uri, work)
    processor = fast_load.load_processor(archive)
    return Production(
        version.version, archive_model_id(archive), lambda texts: inference.parse_texts(processor, texts)
    )


def known_texts(data: Path | None) -> frozenset[str]:
    """The training data's texts, normalised as inbox keys (such live messages are not queued)."""
    if data is None:
        return frozenset()
    from nlu_mlflow.rasa.data import load_nlu

    examples = load_nlu(data, project=data.is_dir()).examples
    return frozenset(rules_of.normalise(m.get("text")) for m in examples if m.get("text"))


def reparse(store: InboxStore, production: Production, rules: rules_of.Rules) -> tuple[int, int]:
    """Parse the open items an older model answered with today's production, in batches; a different
    intent makes the item ``outdated_disagrees``. Returns (items parsed, disagreements)."""
    if production.model_id is None:
        return 0, 0
    if production.version:
        store.set_model_version(production.model_id, production.version)
    parsed = disagree = 0
    while batch := store.to_reparse(production.model_id, REPARSE_BATCH):
        parses = production.parse([item.text for item in batch])
        intents = [(p.get("intent") or {}).get("name") for p in parses]
        store.set_production_parses(production.model_id, list(zip(batch, intents, strict=True)), rules)
        parsed += len(batch)
        disagree += sum(rules_of.disagreement(i.intent, x) for i, x in zip(batch, intents, strict=True))
    return parsed, disagree


def conversations(settings: InboxSettings, days: float, limit: int) -> list[review.Conversation]:
    """The conversations of the last ``days`` that went wrong, newest first (read-only, masked nothing:
    only ids, times and counts leave the store)."""
    reader = TrackerReader(tracker_url(settings))
    try:
        reader.check()
        since = time.time() - days * 86400
        names = {
            "fallback_actions": settings.fallback_actions,
            "handoff_actions": review.HANDOFF_ACTIONS,
            "handoff_intents": review.HANDOFF_INTENTS,
        }
        signals = tracker_store.conversation_signals(reader, since, names)
        low = review.low_confidence_turns(tracker_store.user_turns_since(reader, since))
    finally:
        reader.dispose()
    return review.went_wrong(signals, low, limit)


def conversation_story(
    settings: InboxSettings, sender_id: str, out: Path, domain: Path | None, tracking_uri: str | None
) -> Path:
    """One conversation, masked, as a Rasa test story in ``out`` (written whole, or not at all). Its name is
    the sender's keyed hash from the inbox, never the sender id."""
    from nlu_mlflow.rasa.test_stories import test_story_yaml

    reader = TrackerReader(tracker_url(settings))
    try:
        reader.check()
        events = [json.loads(data) for data in tracker_store.events_of(reader, sender_id)]
    except ValueError:
        raise InputError(
            f"conversation {sender_id}: an event is not JSON; the tracker store is damaged."
        ) from None
    finally:
        reader.dispose()
    if not events:
        raise InputError(
            f"no conversation {sender_id!r} in the tracker store; see `nlu-mlflow inbox conversations`."
        )
    name = "live conversation " + open_inbox(settings.inbox_url, tracking_uri).sender_hash(sender_id)[:12]
    story = test_story_yaml(name, review.masked_events(events, settings.sensitive_entities), domain)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(story, encoding="utf-8")
    os.replace(partial, out)
    return out


@dataclass(frozen=True)
class InboxCounts:
    """What the inbox holds: items by state, open items by reason, the oldest open item's first sighting."""

    by_state: dict[str, int]
    by_reason: dict[str, int]
    oldest_open_first_seen: float | None
    oldest_open_text: str | None  # masked

    @property
    def open(self) -> int:
        return sum(self.by_state[state] for state in OPEN_STATES)

    def to_dict(self) -> dict:
        """For the nightly summary JSON (no text: the summary may travel further than the inbox)."""
        return {
            "open": self.open,
            "by_state": self.by_state,
            "by_reason": self.by_reason,
            "oldest_open_first_seen": self.oldest_open_first_seen,
        }

    def line(self) -> str:
        """One line for the Slack message."""
        reasons = ", ".join(f"{name} {n}" for name, n in sorted(self.by_reason.items())) or "none"
        return f"inbox: {self.open} to review ({reasons}); {self.by_state['pushed']} in annotation"


def counts(store: InboxStore) -> InboxCounts:
    by_reason: Counter[str] = Counter()
    for reasons in store.open_reasons():
        by_reason.update(reasons)
    oldest = store.oldest_open()
    return InboxCounts(
        store.state_counts(),
        dict(by_reason),
        oldest.first_seen if oldest else None,
        oldest.text if oldest else None,
    )


def nightly_counts(inbox_url: str | None, tracking_uri: str | None) -> InboxCounts | None:
    """The inbox counts for the nightly run's summary and Slack message; None when this project has no inbox
    yet (a missing default SQLite file is not created). ``counts.to_dict()`` for the summary JSON,
    ``counts.line()`` for the message; neither holds live text."""
    url = inbox_url or os.environ.get(INBOX_URL_ENV) or default_url(tracking_uri, Path.cwd())
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return counts(InboxStore(url))


def forget(store: InboxStore, sender_id: str) -> Forgotten:
    """Erase one sender's messages from the inbox (the Label Studio tasks are the caller's to delete)."""
    return store.forget(sender_id)
