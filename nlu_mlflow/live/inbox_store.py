"""The inbox: unique live messages (masked), what to look at first, and the annotations made of them.

Its own database, written only by nlu-mlflow (never the team's tracker store): an SQLite file beside the
MLflow store by default (``default_url``), or any SQLAlchemy URL (``postgresql+psycopg2://...``) for a team.
Everything stored here is already masked (decide/masking.py): the inbox never sees raw live text.

Tables (SQLAlchemy Core; created on first open, see ``METADATA``):

- ``inbox_items``: one row per unique message. ``key`` is the normalised masked text
  (``decide.inbox.normalise``), unique; ``text`` the masked text as first seen. ``count``,
  ``first_seen``/``last_seen`` (epoch seconds), ``channels`` (JSON list), ``model_id`` (Rasa's
  ``metadata.model_id``) and ``model_version`` (registered version, where known), the served parse:
  ``intent``, ``confidence``, ``ranking`` (JSON list of {name, confidence}), ``entities`` (JSON list,
  offsets into the masked text, no masked value ever); ``production_intent`` (today's production parse,
  where it was asked for), ``reasons`` (JSON list of ``decide.inbox`` reason names), ``score``
  (``decide.inbox.score``), ``state`` (one of ``STATES``) and ``task_id`` (the Label Studio task, once
  pushed).
- ``inbox_days``: messages per item and day (``YYYY-MM-DD``, UTC).
- ``inbox_senders``: who sent an item, as a keyed hash (HMAC-SHA256 with the inbox secret, ``sender_hash``),
  never the sender id itself; with the count, so ``forget`` can take one sender's share out of a shared
  item.
- ``inbox_annotations``: a person's label for an item: ``intent``, ``entities`` (JSON, offsets into
  ``text``), ``text`` (masked text the annotator saw, maybe edited), ``annotator``, ``annotated_at``,
  ``source`` (``label-studio`` | ``file``) with ``source_id`` (the annotation's id there; unique per item
  and source, so adding the same annotation twice is a no-op), ``skipped`` (the annotator skipped the item),
  ``written_file`` / ``written_at`` once written into the project's training data.
- ``inbox_watermarks``: per tracker store, the last event id committed and the ids inside the re-read
  overlap behind it (workflow/inbox.py; several Rasa workers commit ids out of order on
  PostgreSQL).

The secret for sender hashes comes from ``NLU_MLFLOW_INBOX_SECRET``; without it, a SQLite inbox keeps a
random one in a file beside itself (``<inbox>.key``, mode 600), so the hashes cannot be checked by whoever
has only the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.errors import InputError

SECRET_ENV = "NLU_MLFLOW_INBOX_SECRET"
INBOX_FILE = "inbox.db"

# item states, in the order an item usually goes through them
NEW = "new"  # collected; nothing says a person should look at it
QUEUED = "queued"  # has at least one reason to be looked at
PUSHED = "pushed"  # sent to the annotation tool (task_id set)
ANNOTATED = "annotated"  # a person labelled it (an annotation exists)
WRITTEN = "written"  # its annotation is in the project's training data
SKIPPED = "skipped"  # not to be annotated: already in the training data, or skipped by a person
STATES = (NEW, QUEUED, PUSHED, ANNOTATED, WRITTEN, SKIPPED)
OPEN_STATES = (NEW, QUEUED)  # what ``ranked`` offers
SOURCES = ("label-studio", "file")

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "inbox_items",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(1000), nullable=False, unique=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("count", sa.Integer, nullable=False, default=0),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("channels", sa.Text, nullable=False, default="[]"),
    sa.Column("model_id", sa.String(255)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("intent", sa.String(255)),
    sa.Column("confidence", sa.Float),
    sa.Column("ranking", sa.Text, nullable=False, default="[]"),
    sa.Column("entities", sa.Text, nullable=False, default="[]"),
    sa.Column("production_intent", sa.String(255)),
    sa.Column("production_model_id", sa.String(255)),
    sa.Column("reasons", sa.Text, nullable=False, default="[]"),
    sa.Column("score", sa.Float, nullable=False, default=0.0),
    sa.Column("state", sa.String(16), nullable=False, default=NEW),
    sa.Column("task_id", sa.String(64)),
    sa.Index("ix_inbox_items_state_score", "state", "score"),
)
# DAYS and SENDERS are append-only logs (a row per item and day, or item and sender, per collected page; read
# as sums): appending is ~10x cheaper than an upsert into a growing index, which decides collect's speed.
DAYS = sa.Table(
    "inbox_days",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.Integer, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)
SENDERS = sa.Table(
    "inbox_senders",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.Integer, nullable=False),
    sa.Column("sender_hash", sa.String(32), nullable=False),  # forget scans the log (rare; no index to keep)
    sa.Column("count", sa.Integer, nullable=False),
)
ANNOTATIONS = sa.Table(
    "inbox_annotations",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("inbox_items.id")),  # NULL once the sender was forgotten
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent", sa.String(255)),
    sa.Column("entities", sa.Text, nullable=False, default="[]"),
    sa.Column("annotator", sa.String(255)),
    sa.Column("annotated_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("skipped", sa.Boolean, nullable=False, default=False),
    sa.Column("written_file", sa.Text),
    sa.Column("written_at", sa.Float),
    sa.UniqueConstraint("item_id", "source", "source_id", name="uq_inbox_annotation_source"),
)
WATERMARKS = sa.Table(
    "inbox_watermarks",
    METADATA,
    sa.Column("source", sa.String(64), primary_key=True),  # a digest of the tracker store's URL
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False, default=0),
    sa.Column("malformed", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("seen", sa.Text, nullable=False, default="[]"),  # JSON: the event ids inside the overlap
)
_JSON_COLUMNS = ("channels", "ranking", "entities", "reasons")


@dataclass(frozen=True)
class Item:
    """One unique (masked) live message and what the inbox knows about it."""

    id: int
    key: str
    text: str
    count: int
    first_seen: float
    last_seen: float
    channels: list[str]
    model_id: str | None
    model_version: str | None
    intent: str | None
    confidence: float | None
    ranking: list[dict]
    entities: list[dict]
    production_intent: str | None
    production_model_id: str | None
    reasons: list[str]
    score: float
    state: str
    task_id: str | None


@dataclass(frozen=True)
class Annotation:
    """A person's label for an item; ``entities``: {start, end, entity, value[, role, group]} in ``text``."""

    item_id: int
    text: str
    intent: str | None
    entities: list[dict] = field(default_factory=list)
    annotator: str | None = None
    annotated_at: float = 0.0
    source: str = "label-studio"
    source_id: str = ""
    skipped: bool = False
    id: int | None = None
    written_file: str | None = None


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` removed: items (their Label Studio tasks, to delete there) and annotations."""

    items: int
    task_ids: list[str]
    annotations: int  # unwritten annotations deleted with the items
    shared_items: int  # items other senders sent too: kept, with this sender's count taken out
    written_files: list[str]  # training-data files already holding an erased item's text: edit them by hand


class CollectConflict(Exception):
    """Another collect moved this tracker store's watermark while this one read: nothing of this batch was
    recorded (the other collect has it)."""


_CONFLICT = (
    "another `inbox collect` on this tracker store and inbox recorded events meanwhile; this one stopped "
    "without recording its last batch: run it again later (or schedule one collector)"
)


@dataclass(frozen=True)
class Watermark:
    """How far the inbox has read one tracker store: the last event id committed, and totals."""

    last_id: int = 0
    events: int = 0
    malformed: int = 0
    updated_at: float | None = None


def default_url(tracking_uri: str | None, project_dir: Path | None = None) -> str:
    """``sqlite:///<folder of the MLflow SQLite store>/inbox.db``; for any other tracking store,
    ``inbox.db`` in the project folder."""
    if tracking_uri and tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri.removeprefix('sqlite:///')).parent / INBOX_FILE}"
    return f"sqlite:///{(project_dir or Path.cwd()).resolve() / INBOX_FILE}"


class InboxStore:
    """The inbox database. ``InboxStore(url)`` creates the tables on first use; each method is one
    transaction."""

    def __init__(self, url: str, secret: bytes | None = None):
        self.url = url
        self.engine = _engine(url)
        try:
            METADATA.create_all(self.engine)
        except sa.exc.SQLAlchemyError as error:
            raise InputError(
                f"inbox store {_safe(url)}: cannot open or create its tables ({type(error).__name__}); "
                "check the URL, that the database exists and that this user may create tables."
            ) from None
        self._secret = secret
        self._hashes: dict[str, str] = {}

    # --- senders -------------------------------------------------------------------------------------------
    def sender_hash(self, sender_id: str) -> str:
        """The keyed hash stored for a sender (HMAC-SHA256 with the inbox secret, 128 bits in hex)."""
        if self._secret is None:
            self._secret = _secret_for(self.url)
        return hmac.new(self._secret, sender_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    @contextmanager
    def transaction(self) -> Iterator[sa.engine.Connection]:
        with self.engine.begin() as connection:
            yield connection

    # --- reading -------------------------------------------------------------------------------------------
    def items(self, state: str | None = None, limit: int | None = None) -> list[Item]:
        query = sa.select(ITEMS).order_by(ITEMS.c.id)
        if state is not None:
            query = query.where(ITEMS.c.state == state)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [_item(row) for row in connection.execute(query)]

    def item(self, item_id: int) -> Item | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(ITEMS).where(ITEMS.c.id == item_id)).first()
        return _item(row) if row is not None else None

    def item_by_key(self, key: str) -> Item | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(ITEMS).where(ITEMS.c.key == key)).first()
        return _item(row) if row is not None else None

    def ranked(self, limit: int) -> list[Item]:
        """The open items (new or queued) to look at first: highest score, then most frequent, then newest."""
        query = (
            sa.select(ITEMS)
            .where(ITEMS.c.state.in_(OPEN_STATES))
            .order_by(ITEMS.c.score.desc(), ITEMS.c.count.desc(), ITEMS.c.last_seen.desc(), ITEMS.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_item(row) for row in connection.execute(query)]

    def daily_counts(self, item_id: int) -> dict[str, int]:
        query = (
            sa.select(DAYS.c.day, sa.func.sum(DAYS.c.count).label("count"))
            .where(DAYS.c.item_id == item_id)
            .group_by(DAYS.c.day)
            .order_by(DAYS.c.day)
        )
        with self.engine.connect() as connection:
            return {row.day: row.count for row in connection.execute(query)}

    def state_counts(self) -> dict[str, int]:
        query = sa.select(ITEMS.c.state, sa.func.count()).group_by(ITEMS.c.state)
        with self.engine.connect() as connection:
            found = dict(connection.execute(query).all())
        return {state: found.get(state, 0) for state in STATES}

    def open_reasons(self) -> Iterator[list[str]]:
        """The reasons of every open item (for counts by reason), streamed."""
        query = sa.select(ITEMS.c.reasons).where(ITEMS.c.state.in_(OPEN_STATES))
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=1000).execute(query):
                yield json.loads(row.reasons)

    def oldest_open(self) -> Item | None:
        """The open item first seen longest ago (the oldest unreviewed message)."""
        query = sa.select(ITEMS).where(ITEMS.c.state.in_(OPEN_STATES)).order_by(ITEMS.c.first_seen).limit(1)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _item(row) if row is not None else None

    # --- collecting ---
    def watermark(self, source: str) -> Watermark:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(WATERMARKS).where(WATERMARKS.c.source == source)).first()
        return Watermark(row.last_id, row.events, row.malformed, row.updated_at) if row else Watermark()

    def seen_ids(self, source: str) -> set[int]:
        """The event ids recorded inside the overlap behind the watermark (at most ``overlap`` of them)."""
        with self.engine.connect() as connection:
            query = sa.select(WATERMARKS.c.seen).where(WATERMARKS.c.source == source)
            return set(json.loads(connection.execute(query).scalar() or "[]"))

    def record_page(
        self, source: str, page: rules_of.Page, marks: tuple[int, int, set[int]], context: PageContext
    ):
        """One folded batch, the new watermark and the ids seen inside the overlap behind it, in one
        transaction (all or nothing). ``marks``: (the watermark the batch was read from, the new one, the ids
        seen). ``CollectConflict`` when the watermark moved meanwhile (another collect on this store)."""
        since, last_id, seen = marks
        try:
            self._record(source, page, since, last_id, seen, context)
        except sa.exc.IntegrityError:  # two first collects inserted the watermark row at once
            raise CollectConflict(_CONFLICT) from None

    def _record(self, source, page, since: int, last_id: int, seen: set[int], context: PageContext) -> None:
        with self.transaction() as connection:
            _advance(connection, source, page, (since, last_id), seen)  # first: it takes the row's lock
            ids = self._upsert_items(connection, page.deltas, context)
            _add_counts(
                connection, DAYS, "day", [(ids[k], d.days) for k, d in page.deltas.items() if k in ids]
            )
            senders = [(ids[k], self._hashed(d.senders)) for k, d in page.deltas.items() if k in ids]
            _add_counts(connection, SENDERS, "sender_hash", senders)

    def _hashed(self, senders: dict[str, int]) -> dict[str, int]:
        if len(self._hashes) > 100_000:  # a cache for one collect, bounded
            self._hashes.clear()
        found = {}
        for sender, n in senders.items():
            digest = self._hashes.get(sender)
            if digest is None:
                digest = self._hashes[sender] = self.sender_hash(sender)
            found[digest] = n
        return found

    def _upsert_items(self, connection, deltas: dict, context: PageContext) -> dict[str, int]:
        existing = _existing_items(connection, list(deltas))
        inserts, updates = [], []
        for key, delta in deltas.items():
            values = rules_of.merged(
                existing.get(key), delta, context.rules, key in context.known_keys, context.versions
            )
            if values is None:
                continue
            values = {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in values.items()}
            if key in existing:
                updates.append({**values, "item_id": existing[key]["id"]})
            else:
                inserts.append(values)
        _many(connection, ITEMS.insert(), inserts)  # every new item has a parse: one column set
        _update_items(connection, updates)
        ids = {key: row["id"] for key, row in existing.items()}
        return {**ids, **_ids(connection, [values["key"] for values in inserts])}

    def item_count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(ITEMS)).scalar_one()

    def to_reparse(self, production_model_id: str, limit: int) -> list[Item]:
        """Open items answered by another model than production and not yet parsed by this production."""
        served_by_other = sa.or_(ITEMS.c.model_id.is_(None), ITEMS.c.model_id != production_model_id)
        not_parsed = sa.or_(
            ITEMS.c.production_model_id.is_(None), ITEMS.c.production_model_id != production_model_id
        )
        query = (
            sa.select(ITEMS)
            .where(ITEMS.c.state.in_(OPEN_STATES), served_by_other, not_parsed)
            .order_by(ITEMS.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_item(row) for row in connection.execute(query)]

    def set_production_parses(self, production_model_id: str, parsed: list[tuple[Item, str | None]], rules):  # noqa: ARG002
        """Record today's production intent per item; disagreeing with the served intent is a reason."""
        rows = []
        for item, intent in parsed:
            reasons = set(item.reasons)
            if rules_of.disagreement(item.intent, intent):
                reasons.add(rules_of.OUTDATED_DISAGREES)
            reasons = sorted(reasons)
            rows.append(
                {
                    "item_id": item.id,
                    "production_intent": intent,
                    "production_model_id": production_model_id,
                    "reasons": json.dumps(reasons),
                    "score": rules_of.score(reasons, item.count),
                    "state": rules_of.open_state(reasons),
                }
            )
        if rows:
            with self.transaction() as connection:
                _update_items(connection, rows)

    def set_model_version(self, model_id: str, version: str) -> None:
        """Items answered by the model ``model_id`` were answered by this registered version."""
        with self.transaction() as connection:
            connection.execute(
                ITEMS.update().where(ITEMS.c.model_id == model_id).values(model_version=version)
            )

    # --- state changes -------------------------------------------------------------------------------------
    def mark_pushed(self, item_ids: Sequence[int], task_ids: Sequence[str | int]) -> None:
        """Items sent to the annotation tool, with the task id each became (same order)."""
        if len(item_ids) != len(task_ids):
            raise ValueError("mark_pushed: one task id per item id")
        with self.transaction() as connection:
            for item_id, task_id in zip(item_ids, task_ids, strict=True):
                connection.execute(
                    ITEMS.update().where(ITEMS.c.id == item_id).values(state=PUSHED, task_id=str(task_id))
                )

    def set_state(self, item_ids: Iterable[int], state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown inbox state {state!r}; one of {', '.join(STATES)}")
        ids = list(item_ids)
        with self.transaction() as connection:
            connection.execute(ITEMS.update().where(ITEMS.c.id.in_(ids)).values(state=state))

    def add_annotations(self, annotations: Iterable[Annotation]) -> list[int]:
        """Store annotations; one already stored (same item, source and source id) is left as it was.

        The item becomes ``annotated`` (``skipped`` when the annotator skipped it). Returns the ids of the
        annotations added by this call (an empty list when all were known already).
        """
        added = []
        with self.transaction() as connection:
            for annotation in annotations:
                new_id = _insert_annotation(connection, annotation)
                if new_id is not None:
                    added.append(new_id)
                    state = SKIPPED if annotation.skipped else ANNOTATED
                    connection.execute(
                        ITEMS.update().where(ITEMS.c.id == annotation.item_id).values(state=state)
                    )
        return added

    def unwritten_annotations(self) -> list[Annotation]:
        """Annotations not yet written into the training data (skipped ones excluded), oldest first."""
        query = (
            sa.select(ANNOTATIONS)
            .where(ANNOTATIONS.c.written_file.is_(None), ANNOTATIONS.c.skipped.is_(False))
            .order_by(ANNOTATIONS.c.id)
        )
        with self.engine.connect() as connection:
            return [_annotation(row) for row in connection.execute(query)]

    def annotations(self, item_id: int | None = None) -> list[Annotation]:
        query = sa.select(ANNOTATIONS).order_by(ANNOTATIONS.c.id)
        if item_id is not None:
            query = query.where(ANNOTATIONS.c.item_id == item_id)
        with self.engine.connect() as connection:
            return [_annotation(row) for row in connection.execute(query)]

    def mark_written(self, annotation_ids: Sequence[int], file: str | Path) -> None:
        """Annotations now in ``file`` (after it was written whole); their items become ``written``."""
        ids = list(annotation_ids)
        with self.transaction() as connection:
            connection.execute(
                ANNOTATIONS.update()
                .where(ANNOTATIONS.c.id.in_(ids))
                .values(written_file=str(file), written_at=time.time())
            )
            items = sa.select(ANNOTATIONS.c.item_id).where(ANNOTATIONS.c.id.in_(ids))
            connection.execute(ITEMS.update().where(ITEMS.c.id.in_(items)).values(state=WRITTEN))

    def forget_preview(self, sender_id: str) -> list[str]:
        """The annotation-tool task ids ``forget(sender_id)`` would remove (delete them there first)."""
        digest = self.sender_hash(sender_id)
        with self.engine.connect() as connection:
            own, _ = _split_by_other_senders(connection, _sent_by(connection, digest), digest)
            query = sa.select(ITEMS.c.task_id).where(ITEMS.c.id.in_(own), ITEMS.c.task_id.is_not(None))
            return list(connection.execute(query).scalars())

    def forget(self, sender_id: str) -> Forgotten:
        """Erase a sender: items only they sent go, with their days and unwritten annotations; an annotation
        already written keeps who annotated it, when and into which file, but loses its text. Items other
        senders sent too stay, less this sender's count. Returns what went, with the Label Studio task ids to
        delete there and the files that already hold an erased text."""
        digest = self.sender_hash(sender_id)
        with self.transaction() as connection:
            own, shared = _split_by_other_senders(connection, _sent_by(connection, digest), digest)
            tasks = _delete_items(connection, own)
            annotations, files = _erase_annotations(connection, own)
            for item_id, count in shared:
                connection.execute(
                    ITEMS.update().where(ITEMS.c.id == item_id).values(count=ITEMS.c.count - count)
                )
            connection.execute(SENDERS.delete().where(SENDERS.c.sender_hash == digest))
        return Forgotten(len(own), tasks, annotations, len(shared), files)

    def flag(self, flagged: Sequence[Flagged], reason: str) -> int:
        """Queue already-masked texts with ``reason`` (the replay's flips): an open item gains the reason, a
        text not collected yet becomes a queued item; items a person already handled are left alone.
        Returns how many items were queued."""
        now, queued = time.time(), 0
        with self.transaction() as connection:
            existing = _existing_items(connection, [f.key for f in flagged])
            for f in flagged:
                row = existing.get(f.key)
                if row is None:
                    connection.execute(ITEMS.insert().values(**_flagged_row(f, reason, now)))
                    queued += 1
                elif row["state"] in OPEN_STATES:
                    reasons = sorted(set(row["reasons"]) | {reason})
                    score = rules_of.score(reasons, row["count"])
                    connection.execute(
                        ITEMS.update()
                        .where(ITEMS.c.id == row["id"])
                        .values(reasons=json.dumps(reasons), score=score, state=QUEUED)
                    )
                    queued += 1
        return queued


@dataclass(frozen=True)
class Flagged:
    """A masked text to queue, with how often it was said and the intent production gave it."""

    key: str
    text: str
    count: int
    intent: str | None = None
    confidence: float | None = None


def _flagged_row(f: Flagged, reason: str, now: float) -> dict:
    return {
        "key": f.key, "text": f.text, "count": f.count, "first_seen": now, "last_seen": now,
        "channels": "[]", "intent": f.intent, "confidence": f.confidence, "ranking": "[]", "entities": "[]",
        "reasons": json.dumps([reason]), "score": rules_of.score([reason], f.count), "state": QUEUED,
    }  # fmt: skip


@dataclass(frozen=True)
class PageContext:
    """What ``record_page`` needs besides the page: the rules, the training data's keys, known versions."""

    rules: rules_of.Rules
    known_keys: frozenset[str] = frozenset()
    versions: dict = field(default_factory=dict)  # model_id -> registered version


_ITEM_STATE_COLUMNS = ("id", "count", "first_seen", "last_seen", "channels", "reasons", "state", "model_id")
_CHUNK = 500  # keys per IN (...) list


def _existing_items(connection, keys: list[str]) -> dict[str, dict]:
    found = {}
    columns = [ITEMS.c.key, *(ITEMS.c[name] for name in _ITEM_STATE_COLUMNS)]
    for start in range(0, len(keys), _CHUNK):
        query = sa.select(*columns).where(ITEMS.c.key.in_(keys[start : start + _CHUNK]))
        for row in connection.execute(query).all():
            values = dict(row._mapping)
            values["channels"], values["reasons"] = (
                json.loads(values["channels"]),
                json.loads(values["reasons"]),
            )
            found[values.pop("key")] = values
    return found


def _ids(connection, keys: list[str]) -> dict[str, int]:
    found = {}
    for start in range(0, len(keys), _CHUNK):
        query = sa.select(ITEMS.c.key, ITEMS.c.id).where(ITEMS.c.key.in_(keys[start : start + _CHUNK]))
        found.update(connection.execute(query).all())
    return found


def _update_items(connection, updates: list[dict]) -> None:
    by_columns: dict[tuple, list[dict]] = {}
    for values in updates:
        by_columns.setdefault(tuple(sorted(values)), []).append(values)
    for columns, rows in by_columns.items():
        statement = (
            ITEMS.update()
            .where(ITEMS.c.id == sa.bindparam("item_id"))
            .values({name: sa.bindparam(name) for name in columns if name != "item_id"})
        )
        _many(connection, statement, rows)


def _add_counts(connection, table: sa.Table, column: str, counts: list[tuple[int, dict]]) -> None:
    """Append per-item counts (by day, by sender hash) to their log."""
    rows = [(item_id, name, n) for item_id, by_name in counts for name, n in by_name.items()]
    if not rows:
        return
    if connection.dialect.name == "sqlite":  # tuples straight to the driver (the hot path of collect)
        insert = f"INSERT INTO {table.name} (item_id, {column}, count) VALUES (?, ?, ?)"
        connection.exec_driver_sql(insert, rows)
    else:
        connection.execute(table.insert(), [{"item_id": i, column: name, "count": n} for i, name, n in rows])


def _many(connection, statement, rows: list[dict]) -> None:
    """``executemany``: on SQLite the statement is compiled once and the rows go to the driver as tuples
    (SQLAlchemy's per-row parameter processing costs more than SQLite's insert); elsewhere SQLAlchemy's own
    (psycopg2: ``execute_values``)."""
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(statement, rows)
        return
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    connection.exec_driver_sql(compiled.string, [tuple(row[name] for name in order) for row in rows])


def _advance(connection, source: str, page: rules_of.Page, ids: tuple[int, int], seen: set[int]) -> None:
    """Move the watermark from ``since`` to ``last_id`` and keep the ids inside the overlap behind it (for
    de-duplication); only if it is still at ``since`` (optimistic: a concurrent collect wins, this one
    stops)."""
    since, last_id = ids
    totals = {"events": page.messages, "malformed": page.malformed, "seen": json.dumps(sorted(seen))}
    known = connection.execute(sa.select(WATERMARKS.c.last_id).where(WATERMARKS.c.source == source)).first()
    if known is None and since == 0:
        connection.execute(
            WATERMARKS.insert().values(source=source, last_id=last_id, updated_at=time.time(), **totals)
        )
        return
    moved = connection.execute(
        WATERMARKS.update()
        .where(WATERMARKS.c.source == source, WATERMARKS.c.last_id == since)
        .values(
            last_id=max(last_id, since),
            events=WATERMARKS.c.events + page.messages,
            malformed=WATERMARKS.c.malformed + page.malformed,
            updated_at=time.time(),
            seen=totals["seen"],
        )
    )
    if moved.rowcount != 1:
        raise CollectConflict(_CONFLICT)


def _engine(url: str) -> sa.engine.Engine:
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            # pooled: SQLAlchemy 1.4 opens a file database anew per use otherwise (closing WAL checkpoints)
            pool = sa.pool.QueuePool
            engine = sa.create_engine(url, connect_args={"timeout": 30}, poolclass=pool, future=True)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, OSError) as error:
        raise InputError(
            f"inbox store {_safe(url)}: not a usable database URL ({error}); "
            "give sqlite:///PATH or postgresql+psycopg2://USER@HOST/DB."
        ) from None


def _sqlite_pragmas(connection, _record) -> None:
    """WAL: `inbox status` reads while `collect` writes; NORMAL: no fsync per page commit (WAL stays
    consistent after a crash; a power cut may lose the last pages, which the watermark then re-reads)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def _secret_for(url: str) -> bytes:
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env.encode("utf-8")
    if not url.startswith("sqlite:///"):
        raise InputError(
            f"inbox store {_safe(url)}: set {SECRET_ENV} (a long random string, the same for every "
            "collector) so sender ids are stored as keyed hashes."
        )
    key_file = Path(url.removeprefix("sqlite:///") + ".key")
    if not key_file.exists():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    return key_file.read_text().strip().encode("utf-8")


def _item(row) -> Item:
    values = dict(row._mapping)
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name] or "[]")
    return Item(**values)


def _annotation(row) -> Annotation:
    values = dict(row._mapping)
    values["entities"] = json.loads(values["entities"] or "[]")
    values.pop("written_at")
    return Annotation(**values)


def _insert_annotation(connection, annotation: Annotation) -> int | None:
    if annotation.source not in SOURCES:
        raise ValueError(f"annotation source {annotation.source!r}; one of {', '.join(SOURCES)}")
    known = connection.execute(
        sa.select(ANNOTATIONS.c.id).where(
            ANNOTATIONS.c.item_id == annotation.item_id,
            ANNOTATIONS.c.source == annotation.source,
            ANNOTATIONS.c.source_id == str(annotation.source_id),
        )
    ).first()
    if known is not None:
        return None
    result = connection.execute(
        ANNOTATIONS.insert().values(
            item_id=annotation.item_id,
            text=annotation.text,
            intent=annotation.intent,
            entities=json.dumps(annotation.entities),
            annotator=annotation.annotator,
            annotated_at=annotation.annotated_at or time.time(),
            source=annotation.source,
            source_id=str(annotation.source_id),
            skipped=annotation.skipped,
        )
    )
    return result.inserted_primary_key[0]


def _sent_by(connection, digest: str) -> dict[int, int]:
    """Item id -> how often this sender sent it (a scan of the sender log)."""
    query = (
        sa.select(SENDERS.c.item_id, sa.func.sum(SENDERS.c.count))
        .where(SENDERS.c.sender_hash == digest)
        .group_by(SENDERS.c.item_id)
    )
    return dict(connection.execute(query).all())


def _split_by_other_senders(connection, sent: dict[int, int], digest: str) -> tuple[list[int], list[tuple]]:
    """The items only this sender sent, and (item, this sender's count) of those others sent too."""
    shared_ids: set[int] = set()
    ids = sorted(sent)
    for start in range(0, len(ids), _CHUNK):
        query = (
            sa.select(SENDERS.c.item_id)
            .distinct()
            .where(SENDERS.c.item_id.in_(ids[start : start + _CHUNK]), SENDERS.c.sender_hash != digest)
        )
        shared_ids.update(connection.execute(query).scalars())
    own = [i for i in ids if i not in shared_ids]
    return own, [(i, sent[i]) for i in ids if i in shared_ids]


def _delete_items(connection, item_ids: list[int]) -> list[str]:
    if not item_ids:
        return []
    tasks = connection.execute(
        sa.select(ITEMS.c.task_id).where(ITEMS.c.id.in_(item_ids), ITEMS.c.task_id.is_not(None))
    ).scalars()
    tasks = list(tasks)
    connection.execute(DAYS.delete().where(DAYS.c.item_id.in_(item_ids)))
    connection.execute(SENDERS.delete().where(SENDERS.c.item_id.in_(item_ids)))
    return tasks


def _erase_annotations(connection, item_ids: list[int]) -> tuple[int, list[str]]:
    if not item_ids:
        return 0, []
    of_items = ANNOTATIONS.c.item_id.in_(item_ids)
    files = connection.execute(
        sa.select(ANNOTATIONS.c.written_file)
        .distinct()
        .where(of_items, ANNOTATIONS.c.written_file.is_not(None))
    ).scalars()
    files = sorted(files)
    removed = connection.execute(ANNOTATIONS.delete().where(of_items, ANNOTATIONS.c.written_file.is_(None)))
    connection.execute(ANNOTATIONS.update().where(of_items).values(item_id=None, text=""))
    connection.execute(ITEMS.delete().where(ITEMS.c.id.in_(item_ids)))
    return removed.rowcount, files
