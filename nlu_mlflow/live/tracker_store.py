"""Rasa's SQL tracker store, read as Rasa writes it (``rasa.core.tracker_store.SQLTrackerStore``).

One table ``events``: ``id`` (primary key), ``sender_id``, ``type_name``, ``timestamp``, ``intent_name``,
``action_name``, ``data`` (the whole event as JSON). Only reads: SQLite stores are opened read-only
(``mode=ro``), and no lock is held across pages: each page is one short read by keyset (``id > last``,
ordered by ``id``, ``LIMIT page_size``), so Rasa keeps writing meanwhile and memory stays flat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import sqlalchemy as sa

TABLE = "events"
COLUMNS = ("id", "sender_id", "type_name", "timestamp", "action_name", "data")


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
            self.engine = sa.create_engine(_read_only(url), future=True, pool_pre_ping=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
            raise TrackerStoreError(
                f"tracker store {safe_url(url)}: not a usable database URL ({error}); "
                "give sqlite:///PATH, postgresql://USER@HOST/DB or the project's endpoints.yml."
            ) from None
        self.table = sa.table(TABLE, *(sa.column(name) for name in COLUMNS))

    def check(self) -> None:
        """``TrackerStoreError`` when the store cannot be reached, ``NotRasaStore`` when it is not Rasa's."""
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
        columns = [getattr(t, name) for name in COLUMNS]
        last = after_id
        while True:
            query = sa.select(*columns).where(t.id > last, wanted).order_by(t.id).limit(page_size)
            rows = self._read(query)
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def _read(self, query) -> list[tuple]:
        try:
            with self.engine.connect() as connection:
                return [tuple(row) for row in connection.execute(query)]
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
