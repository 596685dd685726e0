"""`nlu-mlflow inbox ...`: live messages from Rasa's tracker store to annotations.

This module holds ``inbox_app`` and the commands about the inbox itself (collect, status, forget,
conversations); the annotation commands (push, pull, export, import) add themselves to ``inbox_app`` from
their own module. Every command opens the inbox with ``--inbox`` / ``$NLU_MLFLOW_INBOX_URL`` (default:
inbox.db beside the MLflow store).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator
from typing import Annotated

import typer

from nlu_mlflow.cli import logs
from nlu_mlflow.errors import InputError
from nlu_mlflow.workflow import inbox

EXIT_INPUT_ERROR = 2
EXIT_UNREACHABLE = 69  # EX_UNAVAILABLE: the tracker store (or another service) does not answer

inbox_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold live text and database URLs
    help="Live messages from Rasa's tracker store: collect, rank, annotate, feed back.",
)

# called by `inbox forget` with the task ids of the items it is about to erase, before erasing them: the
# annotation module appends its Label Studio task deleter here (an error there stops the forget: nothing
# is erased from the inbox, so the task ids are not lost)
TASK_CLEANERS: list[Callable[[list[str]], None]] = []

InboxUrl = Annotated[
    str | None,
    typer.Option(
        "--inbox",
        envvar=inbox.INBOX_URL_ENV,
        help="The inbox database (SQLAlchemy URL; default: inbox.db beside the MLflow SQLite store).",
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (finds production, places the inbox)."
    ),
]


def fail(error: Exception | str, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    for line in str(error).splitlines():
        logs.echo(f"error: {line}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def known_errors() -> Iterator[None]:
    """Bad input as one sentence and exit 2 (commands add their own services' errors)."""
    try:
        yield
    except InputError as error:
        raise fail(error) from None


def open_store(inbox_url: str | None, tracking_uri: str | None = None):
    """The inbox store for a command (annotation commands use this too)."""
    with known_errors():
        return inbox.open_inbox(inbox_url, tracking_uri)


@inbox_app.command()
def status(inbox_url: InboxUrl = None, tracking_uri: TrackingUri = None) -> None:
    """Items by state, open items by reason, and the oldest unreviewed item."""
    logs.setup(False)
    with known_errors():
        found = inbox.counts(open_store(inbox_url, tracking_uri))
    logs.echo("state       items")
    for state, n in found.by_state.items():
        logs.echo(f"{state:<11} {n}")
    logs.echo(
        "open items by reason: "
        + (", ".join(f"{r} {n}" for r, n in sorted(found.by_reason.items())) or "none")
    )
    if found.oldest_open_first_seen is not None:
        when = datetime.datetime.fromtimestamp(found.oldest_open_first_seen, datetime.timezone.utc)
        logs.echo(f"oldest unreviewed: first seen {when:%Y-%m-%d %H:%M} UTC: {found.oldest_open_text}")


@inbox_app.command()
def forget(
    sender: Annotated[str, typer.Argument(help="The sender id (conversation id) to erase.")],
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Erase a sender's messages from the inbox (a user's request to be forgotten)."""
    logs.setup(False)
    store = open_store(inbox_url, tracking_uri)
    with known_errors():
        tasks = store.forget_preview(sender)
        for clean in TASK_CLEANERS:
            clean(tasks)
        gone = inbox.forget(store, sender)
    logs.echo(
        f"forgot the sender: {gone.items} item(s) and {gone.annotations} unwritten annotation(s) removed, "
        f"{gone.shared_items} item(s) other senders sent too kept"
    )
    if gone.task_ids:
        logs.echo(f"annotation tasks to delete: {', '.join(gone.task_ids)}")
    for path in gone.written_files:
        logs.echo(f"already in training data: {path} (remove the text there by hand)", err=True)
