"""Exit statuses and the one way a command turns a known error into one sentence and its status.

Each command group keeps a table from error type to exit status (``main.EXIT_STATUS``,
``inbox.EXIT_STATUS``, ``annotate.EXIT_STATUS``); ``known_errors(table)`` applies it, the most specific type
winning. The numbers follow sysexits.h where one fits, so cron and CI can tell "try again later" from "fix
the input".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import typer

from nlu_mlflow.cli import logs

EXIT_FAILED = 1
EXIT_INPUT_ERROR = 2
EXIT_GATES_FAILED = 3
EXIT_FAILED_CANDIDATES = 4  # the workflow completed, but at least one config failed to train or score
EXIT_CHAMPION_UNUSABLE = 5  # production cannot be loaded or scored: nothing registered, production kept
EXIT_NOT_RASA = 65  # EX_DATAERR: the database answers but is not Rasa's tracker store
EXIT_UNREACHABLE = 69  # EX_UNAVAILABLE: the tracker store, Label Studio or another service does not answer
EXIT_BUSY = 75  # EX_TEMPFAIL: another run or collect holds the lock or recorded meanwhile; try again later
EXIT_REFUSED = 77  # EX_NOPERM: a server refused the login, the token or the permission

ExitTable = Mapping[type[BaseException], int]


def exit_status(error: BaseException, table: ExitTable) -> int:
    return next((table[kind] for kind in type(error).__mro__ if kind in table), EXIT_FAILED)


def fail(error: BaseException | str, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    """Print the error as ``error: ...`` lines on stderr; raise the returned Exit."""
    for line in str(error).splitlines():
        logs.echo(f"error: {line}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def known_errors(table: ExitTable, notes: Mapping[type[BaseException], str] | None = None) -> Iterator[None]:
    """The errors of ``table`` as one sentence each and their exit status; ``notes`` adds what the user
    keeps after an error of that type (e.g. the messages collected so far)."""
    try:
        yield
    except tuple(table) as error:
        note = next((text for kind, text in (notes or {}).items() if isinstance(error, kind)), None)
        raise fail(f"{error}; {note}" if note else error, exit_status(error, table)) from None
