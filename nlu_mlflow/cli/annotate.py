"""`nlu-mlflow inbox push|pull|export|import`: the inbox's items annotated in Label Studio or in a file, and
written back into the project as Rasa NLU YAML. The commands add themselves to ``inbox_app``; ``forget``
deletes the sender's Label Studio tasks through ``TASK_CLEANERS``.

Exit status: 0 done; 2 bad input (an intent or entity the domain lacks, a bad file, a git problem); 69
Label Studio does not answer; 77 it refused the API token; 1 it refused a request, or the tracking server
failed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.cli import exits, logs
from nlu_mlflow.cli.exits import EXIT_FAILED, EXIT_INPUT_ERROR, EXIT_REFUSED, EXIT_UNREACHABLE, fail
from nlu_mlflow.cli.inbox import (
    TASK_CLEANERS,
    InboxUrl,
    TrackingUri,
    inbox_app,
    open_store,
)
from nlu_mlflow.errors import InputError
from nlu_mlflow.live.label_studio import (
    TOKEN_ENV,
    URL_ENV,
    LabelStudio,
    LabelStudioDown,
    LabelStudioError,
    LabelStudioRefused,
)
from nlu_mlflow.tracking.errors import TrackingError
from nlu_mlflow.workflow import annotate, annotation_file

Project = Annotated[
    Path, typer.Option(exists=True, file_okay=False, help="The Rasa project (its domain names the labels).")
]
Url = Annotated[
    str | None, typer.Option("--label-studio-url", envvar=URL_ENV, help="Label Studio's address.")
]
Title = Annotated[str, typer.Option(help="The Label Studio project's title.")]
Folder = Annotated[
    Path | None,
    typer.Option("--out", help="Folder of the annotated files (default: PROJECT/data/nlu/annotated)."),
]
GitBranch = Annotated[
    str | None,
    typer.Option(help="Commit the new file on this branch (not checked out; no push) instead of writing it."),
]


# bad input 2; Label Studio down 69, refusing the token 77, refusing a request 1; the tracking server 1
EXIT_STATUS = {
    InputError: EXIT_INPUT_ERROR,
    LabelStudioDown: EXIT_UNREACHABLE,
    LabelStudioRefused: EXIT_REFUSED,
    LabelStudioError: EXIT_FAILED,
    TrackingError: EXIT_FAILED,
}


def known_errors() -> contextlib.AbstractContextManager[None]:
    return exits.known_errors(EXIT_STATUS)


LiveTestShare = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Seeded share of the annotations written as live NLU test data (never training data) under "
        "--live-test-dir, for `run --live-test-data` (docs/replay.md).",
    ),
]
LiveTestDir = Annotated[
    Path | None, typer.Option(file_okay=False, help="Where live test data goes [PROJECT/live_tests].")
]


@inbox_app.command()
def push(
    project: Project = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="How many of the top items to send.")] = 50,
    title: Title = annotate.DEFAULT_TITLE,
    model_name: Annotated[
        str, typer.Option(help="Registered model whose production version pre-annotates.")
    ] = (c.DEFAULT_MODEL_NAME),
    served: Annotated[
        bool,
        typer.Option("--served", help="Pre-annotate with the parse the assistant served (no model load)."),
    ] = False,
    label_studio_url: Url = None,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Send the top open items to Label Studio as tasks, pre-annotated with the production model's parse."""
    logs.setup(False)
    store = open_store(inbox_url, tracking_uri)
    with known_errors():
        client = LabelStudio(label_studio_url)
        schema = annotate.target(project).schema
        done = annotate.run_push(
            store, client, schema, limit, title, None if served else model_name, tracking_uri
        )
    logs.echo(done.line())


@inbox_app.command()
def pull(
    project: Project = Path("."),
    out: Folder = None,
    git_branch: GitBranch = None,
    title: Title = annotate.DEFAULT_TITLE,
    label_studio_url: Url = None,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
    live_test_share: LiveTestShare = 0.0,
    live_test_dir: LiveTestDir = None,
) -> None:
    """Take the submitted annotations from Label Studio and write them into the project as Rasa NLU YAML."""
    logs.setup(False)
    store = open_store(inbox_url, tracking_uri)
    with known_errors():
        client = LabelStudio(label_studio_url)
        where = annotate.target(project, out, git_branch, live_test_share, live_test_dir)
        done = annotate.pull(store, client, where, title)
    _report(done)


@inbox_app.command("export")
def export_items(
    out: Annotated[Path, typer.Option(dir_okay=False, help="The file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or yaml.")] = "csv",
    project: Project = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="How many of the top items.")] = 50,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write the top open items to a CSV or YAML file to annotate by hand (then `inbox import`)."""
    logs.setup(False)
    if fmt not in annotation_file.FORMATS:
        raise fail(f"--format {fmt}: one of {', '.join(annotation_file.FORMATS)}.")
    store = open_store(inbox_url, tracking_uri)
    with known_errors():
        rows = annotation_file.export(store, annotate.target(project).schema, out, fmt, limit)
    logs.echo(f"wrote {rows} item(s) to {out}; edit intent, text (entities as [value](entity)) and skip")


@inbox_app.command("import")
def import_items(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file `inbox export` wrote.")],
    project: Project = Path("."),
    out: Folder = None,
    git_branch: GitBranch = None,
    annotator: Annotated[
        str | None, typer.Option(help="Who annotated the file (default: this user).")
    ] = None,
    inbox_url: InboxUrl = None,
    tracking_uri: TrackingUri = None,
    live_test_share: LiveTestShare = 0.0,
    live_test_dir: LiveTestDir = None,
) -> None:
    """Read an edited export file into the inbox and write its annotations into the project."""
    logs.setup(False)
    store = open_store(inbox_url, tracking_uri)
    with known_errors():
        where = annotate.target(project, out, git_branch, live_test_share, live_test_dir)
        done = annotation_file.import_file(store, where, file, annotator or getpass.getuser())
    _report(done)


def _report(done: annotate.Pulled) -> None:
    for conflict in done.conflicts:
        logs.echo(f"not written: {conflict}; relabel one of them", err=True)
    logs.echo(done.line())


def delete_tasks(task_ids: list[str]) -> None:
    """``inbox forget``: the sender's Label Studio tasks go first (an error there stops the forget)."""
    if not task_ids:
        return
    if not os.environ.get(URL_ENV) or not os.environ.get(TOKEN_ENV):
        raise fail(
            f"the sender has {len(task_ids)} Label Studio task(s): set {URL_ENV} and {TOKEN_ENV} so that "
            "forget deletes them too (nothing was erased)."
        )
    with known_errors():
        client = LabelStudio()
        for task_id in task_ids:
            client.delete_task(task_id)


TASK_CLEANERS.append(delete_tasks)
