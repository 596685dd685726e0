"""Rasa's SQL tracker store, read as Rasa writes it (``rasa.core.tracker_store.SQLTrackerStore``).

One table ``events``: ``id`` (primary key), ``sender_id``, ``type_name``, ``timestamp``, ``intent_name``,
``action_name``, ``data`` (the whole event as JSON). Only reads: SQLite stores are opened read-only
(``mode=ro``), and no lock is held across pages: each page is one short read by keyset (``id > last``,
ordered by ``id``, ``LIMIT page_size``), so Rasa keeps writing meanwhile and memory stays flat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlalchemy as sa

TABLE = "events"
COLUMNS = ("id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")  # Rasa's
PAGE_COLUMNS = ("id", "sender_id", "type_name", "timestamp", "action_name", "data")  # what ``pages`` yields


class TrackerStoreError(Exception):
    """The tracker store cannot be read (down, refused, no such file); the message says which and the fix."""


class NotRasaStore(TrackerStoreError):
    """The database answers but holds no Rasa ``events`` table of the expected shape."""


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def source_id(url: str) -> str:
    """A stable name for a tracker store (its URL without password, hashed): the inbox's watermark key."""
    return hashlib.sha256(safe_url(url).encode("utf-8")).hexdigest()[:32]


class TrackerReader:
    """Reads user messages (and the actions named in ``actions``) from one tracker store, page by page."""

    def __init__(self, url: str):
        self.url = url
        try:
            pool = {"poolclass": sa.pool.QueuePool} if url.startswith("sqlite") else {"pool_pre_ping": True}
            self.engine = sa.create_engine(_read_only(url), future=True, **pool)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
            raise TrackerStoreError(
                f"tracker store {safe_url(url)}: not a usable database URL ({error}); "
                "give sqlite:///PATH, postgresql://USER@HOST/DB or the project's endpoints.yml."
            ) from None
        self.table = sa.table(TABLE, *(sa.column(name) for name in COLUMNS))

    def check(self) -> None:
        """``TrackerStoreError`` when the store cannot be reached, ``NotRasaStore`` when it is not Rasa's."""
        path = self.url.removeprefix("sqlite:///")
        if path != self.url and "?" not in path and not Path(path).is_file():
            raise TrackerStoreError(
                f"tracker store {path}: no such file; give the SQLite file Rasa writes (endpoints.yml "
                "`tracker_store: {dialect: sqlite, db: ...}`)."
            )
        try:
            inspector = sa.inspect(self.engine)
            found = (
                {column["name"] for column in inspector.get_columns(TABLE)}
                if inspector.has_table(TABLE)
                else None
            )
        except sa.exc.SQLAlchemyError as error:
            raise TrackerStoreError(
                f"tracker store {safe_url(self.url)}: cannot connect ({_first_line(error)}); "
                "check that the database runs and the URL, user and password are right."
            ) from None
        if found is None or set(COLUMNS) - found:
            what = (
                "has no `events` table"
                if found is None
                else f"lacks {', '.join(sorted(set(COLUMNS) - found))}"
            )
            raise NotRasaStore(
                f"tracker store {safe_url(self.url)}: not Rasa's SQL tracker store (it {what}); "
                "point --tracker-store at the database named in endpoints.yml `tracker_store:`."
            )

    def pages(self, after_id: int, page_size: int, actions: Iterable[str] = ()) -> Iterator[list[tuple]]:
        """Pages of (id, sender_id, type_name, timestamp, action_name, data), id > ``after_id``, by id."""
        t = self.table.c
        wanted = t.type_name == "user"
        if actions:
            wanted = sa.or_(wanted, sa.and_(t.type_name == "action", t.action_name.in_(sorted(actions))))
        columns = [getattr(t, name) for name in PAGE_COLUMNS]
        last = after_id
        while True:
            query = sa.select(*columns).where(t.id > last, wanted).order_by(t.id).limit(page_size)
            rows = self.read(query)
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def read(self, query) -> list[tuple]:
        try:
            with self.engine.connect() as connection:
                return connection.execute(query).all()  # fetchall: one driver call per page
        except sa.exc.SQLAlchemyError as error:
            raise TrackerStoreError(
                f"tracker store {safe_url(self.url)}: reading events failed ({_first_line(error)}); "
                "nothing was recorded from the page that failed: run collect again."
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()


def _read_only(url: str) -> str:
    """SQLite opened read-only (it must exist; a missing file is an error, not a new empty store)."""
    if url.startswith("sqlite:///") and "?" not in url:
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    return url


def _first_line(error: Exception) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def conversation_signals(reader: TrackerReader, since: float, names: dict[str, Iterable[str]]) -> list[dict]:
    """Per conversation with events since ``since``: its last event time, user turns, and how often it hit a
    fallback action, a handoff (action or intent) or a restart. ``names``: fallback_actions, handoff_actions,
    handoff_intents. One aggregate query."""
    t = reader.table.c

    def times(condition) -> sa.sql.ColumnElement:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    handoff = sa.or_(
        sa.and_(t.type_name == "action", t.action_name.in_(sorted(names["handoff_actions"]))),
        sa.and_(t.type_name == "user", t.intent_name.in_(sorted(names["handoff_intents"]))),
    )
    query = (
        sa.select(
            t.sender_id,
            sa.func.max(t.timestamp).label("last"),
            times(t.type_name == "user").label("turns"),
            times(
                sa.and_(t.type_name == "action", t.action_name.in_(sorted(names["fallback_actions"])))
            ).label("fallbacks"),
            times(handoff).label("handoffs"),
            times(t.type_name == "restart").label("restarts"),
        )
        .where(t.timestamp >= since)
        .group_by(t.sender_id)
    )
    keys = ("sender_id", "last", "turns", "fallbacks", "handoffs", "restarts")
    return [dict(zip(keys, row, strict=True)) for row in reader.read(query)]


def user_turns_since(reader: TrackerReader, since: float, page_size: int = 2000) -> Iterator[tuple[str, str]]:
    """(sender_id, event JSON) of the user messages since ``since``, in keyset pages."""
    t = reader.table.c
    last = 0
    while True:
        query = (
            sa.select(t.id, t.sender_id, t.data)
            .where(t.id > last, t.type_name == "user", t.timestamp >= since)
            .order_by(t.id)
            .limit(page_size)
        )
        rows = reader.read(query)
        if not rows:
            return
        yield from ((sender, data) for _, sender, data in rows)
        last = rows[-1][0]


def events_of(reader: TrackerReader, sender_id: str) -> list[str]:
    """The event JSON of one conversation, in order (one conversation: one short read)."""
    t = reader.table.c
    query = sa.select(t.id, t.data).where(t.sender_id == sender_id).order_by(t.id)
    return [data for _, data in reader.read(query)]
