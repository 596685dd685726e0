"""`nlu-mlflow inbox ...`: live messages from Rasa's tracker store to annotations.

This module holds ``inbox_app`` and the commands about the inbox itself (collect, status, forget,
conversations); the annotation commands (push, pull, export, import) add themselves to ``inbox_app`` from
their own module. Every command opens the inbox with ``--inbox`` / ``$NLU_MLFLOW_INBOX_URL`` (default:
inbox.db beside the MLflow store).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from nlu_mlflow.cli import exits, logs
from nlu_mlflow.cli.exits import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INPUT_ERROR,
    EXIT_NOT_RASA,
    EXIT_UNREACHABLE,
)
from nlu_mlflow.errors import InputError
from nlu_mlflow.live.inbox_store import CollectConflict
from nlu_mlflow.live.tracker_store import NotRasaStore, TrackerStoreError
from nlu_mlflow.tracking.errors import TrackingError
from nlu_mlflow.workflow import inbox, inbox_settings

# bad input 2, a tracker store that is not Rasa's 65, one that does not answer 69, another collect recording
# meanwhile 75, the tracking server 1 (what was collected so far is kept)
EXIT_STATUS = {
    InputError: EXIT_INPUT_ERROR,
    NotRasaStore: EXIT_NOT_RASA,
    TrackerStoreError: EXIT_UNREACHABLE,
    CollectConflict: EXIT_BUSY,
    TrackingError: EXIT_FAILED,
}
NOTES = {TrackingError: "the messages collected so far are kept in the inbox"}
TRACKER_STORE_ENV = "NLU_MLFLOW_TRACKER_STORE"

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
TrackerStore = Annotated[
    str | None,
    typer.Option(
        envvar=TRACKER_STORE_ENV,
        help="Rasa's SQL tracker store (SQLAlchemy URL; it may hold a password: prefer the variable).",
    ),
]
Endpoints = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="Or the project's endpoints.yml (`tracker_store:`)."),
]


TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (finds production, places the inbox)."
    ),
]


def known_errors() -> contextlib.AbstractContextManager[None]:
    return exits.known_errors(EXIT_STATUS, NOTES)


def open_store(inbox_url: str | None, tracking_uri: str | None = None):
    """The inbox store for a command (annotation commands use this too)."""
    with known_errors():
        return inbox.open_inbox(inbox_url, tracking_uri)


@inbox_app.command()
def collect(
    tracker_store: TrackerStore = None,
    endpoints: Endpoints = None,
    workflow_file: Annotated[
        Path | None,
        typer.Option(
            "--workflow", exists=True, dir_okay=False, help="Workflow YAML with an `inbox:` section."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(exists=True, help="Training data: live texts already there are not queued.")
    ] = None,
    no_mask: Annotated[
        bool, typer.Option("--no-mask", help="Keep e-mails, phone and card numbers (explicit opt-out).")
    ] = False,
    sensitive_entity: Annotated[
        list[str] | None, typer.Option(help="An entity whose values are masked (repeat the option).")
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="Queue messages whose top two intents are closer.")
    ] = None,
    no_production: Annotated[
        bool,
        typer.Option("--no-production", help="Do not parse outdated messages with the production model."),
    ] = False,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model whose production version parses.")
    ] = None,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Read new user messages from Rasa's tracker store into the inbox (masked), with the reasons to look."""
    logs.setup(False)
    overrides = {
        "tracker_store": tracker_store, "endpoints": endpoints, "data": data, "inbox_url": inbox_url,
        "mask": False if no_mask else None, "sensitive_entities": sensitive_entity or None, "margin": margin,
        "model_name": model_name,
    }  # fmt: skip
    with known_errors():
        settings = inbox_settings.read(workflow_file, overrides)
        done = inbox.run_collect(settings, tracking_uri, not no_production)
    logs.echo(done.line())


@inbox_app.command()
def conversations(
    days: Annotated[float, typer.Option(min=0.0, help="Look this many days back.")] = 7.0,
    limit: Annotated[int, typer.Option(min=1, help="At most this many conversations.")] = 20,
    tracker_store: TrackerStore = None,
    endpoints: Endpoints = None,
) -> None:
    """The conversations that went wrong (fallback, handoff, restart, low confidence turn), newest first."""
    logs.setup(False)
    with known_errors():
        settings = inbox_settings.read(None, {"tracker_store": tracker_store, "endpoints": endpoints})
        found = inbox.conversations(settings, days, limit)
    if not found:
        logs.echo(f"no conversation went wrong in the last {days:g} day(s)")
    for conversation in found:
        when = datetime.datetime.fromtimestamp(conversation.last, datetime.timezone.utc)
        logs.echo(
            f"{when:%Y-%m-%d %H:%M} UTC  {conversation.sender_id}  {conversation.turns} turn(s)  "
            + ", ".join(conversation.reasons)
        )


@inbox_app.command()
def conversation(
    sender: Annotated[str, typer.Argument(help="The conversation's sender id (see `inbox conversations`).")],
    to_test_story: Annotated[
        Path, typer.Option(dir_okay=False, help="Write it, masked, as a Rasa test story.")
    ],
    domain: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The assistant's domain.yml (its slots).")
    ] = None,
    sensitive_entity: Annotated[
        list[str] | None, typer.Option(help="An entity or slot whose values are masked (repeat the option).")
    ] = None,
    tracker_store: TrackerStore = None,
    endpoints: Endpoints = None,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write one conversation, masked, as a Rasa test conversation (then correct it, add it to tests/)."""
    logs.setup(False)
    overrides = {
        "tracker_store": tracker_store, "endpoints": endpoints, "inbox_url": inbox_url,
        "sensitive_entities": sensitive_entity or None,
    }  # fmt: skip
    with known_errors():
        settings = inbox_settings.read(None, overrides)
        written = inbox.conversation_story(settings, sender, to_test_story, domain, tracking_uri)
    logs.echo(f"wrote {written}: correct the wrong turns, then add it to the project's tests/")


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
