"""The project's ``endpoints.yml`` as Rasa reads it (``${VAR}`` substituted): the SQL tracker store's URL."""

from __future__ import annotations

from pathlib import Path

from nlu_mlflow.errors import InputError

SQL_TYPES = ("sql", "sqltrackerstore", "rasa.core.tracker_store.sqltrackerstore")


def tracker_store_url(endpoints: Path) -> str:
    """The SQLAlchemy URL Rasa's ``SQLTrackerStore`` builds from the file's ``tracker_store:`` section.

    The URL may hold a password: never log it (``live.tracker_store.safe_url`` hides it).
    """
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import read_endpoint_config

    if not endpoints.is_file():
        raise InputError(f"{endpoints}: no such file; give the project's endpoints.yml or a database URL.")
    try:
        config = read_endpoint_config(str(endpoints), "tracker_store")
    except (RasaException, ValueError, KeyError) as error:  # an unset ${VAR} or broken YAML
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"{endpoints}: cannot read it ({first}); fix the file or set the variable."
        ) from None
    if config is None:
        raise InputError(
            f"{endpoints}: no `tracker_store:` section; add one with `type: SQL` or pass --tracker-store URL."
        )
    if str(config.type or "").lower() not in SQL_TYPES:
        raise InputError(
            f"{endpoints}: tracker_store type {config.type!r} is not Rasa's SQL tracker store; "
            "the inbox reads `type: SQL` stores (SQLite, PostgreSQL)."
        )
    options = config.kwargs
    url = SQLTrackerStore.get_db_url(
        options.get("dialect", "sqlite"),
        config.url,
        options.get("port"),
        options.get("db", "rasa.db"),
        options.get("username"),
        options.get("password"),
        query=options.get("query"),
    )
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)
