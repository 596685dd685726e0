"""Command line: parse options, call one library function, turn known errors into one sentence."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.cli import annotate as _annotate  # noqa: F401  (adds push, pull, export, import to `inbox`)
from nlu_mlflow.cli import logs, run_options
from nlu_mlflow.cli.exits import (
    EXIT_BUSY,
    EXIT_CHAMPION_UNUSABLE,
    EXIT_FAILED_CANDIDATES,
    EXIT_GATES_FAILED,
    EXIT_INPUT_ERROR,
    EXIT_REFUSED,
    exit_status,
    fail,
    known_errors,
)
from nlu_mlflow.cli.inbox import inbox_app
from nlu_mlflow.cli.tune import tune_worker
from nlu_mlflow.cli.webhooks import slack_url_from_env, sync_rasa, webhooks_app
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import history as production_history
from nlu_mlflow.tracking import runs
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow import launch, lock, manual, record, replay
from nlu_mlflow.workflow import schema as workflow_schema
from nlu_mlflow.workflow import settings as workflow_settings
from nlu_mlflow.workflow.candidates import CandidateFailed
from nlu_mlflow.workflow.champion import ChampionUnusable
from nlu_mlflow.workflow.remote import RemoteDataError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    help="Continuous training for Rasa NLU on MLflow.",
)

EXIT_LOCKED = EXIT_BUSY  # another run holds the lock: cron may simply try again later

TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: sqlite:///mlruns.db here)."
    ),
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


# One table from the project's errors to exit status (README "Exit status"); the most specific type wins.
# 0: the workflow completed; 3: promote's gates failed; 4: it completed but a config failed (run's result).
EXIT_STATUS: dict[type[BaseException], int] = {
    InputError: EXIT_INPUT_ERROR,
    ChampionUnusable: EXIT_CHAMPION_UNUSABLE,  # recorded on the parent run; production untouched
    AccessError: EXIT_REFUSED,  # refused login or permission: the refused call changed nothing
    RegistryError: 1,
    RemoteDataError: 1,
    TrackingError: 1,  # a server that is down
    CandidateFailed: 1,
    lock.LockedError: EXIT_LOCKED,
}
# status, promote, rollback: a registry call refused there is bad input (no such version or model)
MANUAL_EXIT_STATUS = {**EXIT_STATUS, RegistryError: EXIT_INPUT_ERROR}


def run(**values: Any) -> None:
    """Train and evaluate every config, register the best, promote it if it beats production.

    Exit status 0 when the workflow completed (promoted or kept: see the last line and --summary-json);
    4 when it completed but a config failed to train or score; 5 when production cannot be scored
    (production kept, nothing registered); 2 for bad input; 1 for other errors (data fetch, registry);
    75 when another run holds the lock; 77 when the tracking server refuses the login or a permission.
    --summary-json is written on every exit ("decision": "failed" with the error when the run stopped).
    """
    given = run_options.split(values)
    own = given.own
    logs.setup(own["verbose"], own["log_file"])
    request = launch.Request(
        given.settings, own["workflow_file"], own["lock_file"], _teller(own["notify_env"])
    )
    try:
        result, settings = launch.launch(request)
    except launch.RunStopped as stopped:
        raise fail(stopped, exit_status(stopped.cause, EXIT_STATUS)) from None
    table = record.summary_table(result, settings.primary_metric)
    logs.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    logs.echo(f"\nparent run: {result.run_id} ({result.tracking_uri})")
    logs.echo(result.outcome.message)
    if result.failed:
        failed = "; ".join(f"{x.name} FAILED ({x.reason})" for x in result.failed)
        logs.echo(f"{len(result.failed)} config(s) failed: {failed}", err=True)
        raise typer.Exit(EXIT_FAILED_CANDIDATES)


run.__signature__ = run_options.signature()  # the options are declared once, in run_options.OPTIONS
app.command()(run)


def _teller(notify_env: str) -> Callable[[str], None] | None:
    """Posts a one-line run outcome to the Slack-compatible webhook in ``$notify_env``, when one is set."""
    url = slack_url_from_env(notify_env)
    if not url:
        return None
    from nlu_mlflow.receiver import notify

    def tell(text: str) -> None:
        notify.announce(url, notify.text_message(text))

    return tell


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table of every key (docs/settings.md) instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the workflow file (nlu-mlflow.yml), for editors (docs/settings.md)."""
    logs.echo(workflow_schema.markdown_table() if markdown else workflow_schema.json_schema())


ModelName = Annotated[str, typer.Option(help="Registered model name.")]


def _connect(tracking_uri: str | None, experiment: str) -> None:
    logs.setup(False)
    with known_errors(MANUAL_EXIT_STATUS):
        runs.configure(tracking_uri, experiment)


@app.command()
def status(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
) -> None:
    """Which version is in production, since when, from which run and config, with its scores."""
    _connect(tracking_uri, experiment)
    with known_errors(MANUAL_EXIT_STATUS):
        lines = manual.status(model_name).lines()
    for line in lines:
        logs.echo(line)


@app.command("promote")
def promote_version(
    version: Annotated[str, typer.Argument(help="Model version to put into production.")],
    force: Annotated[
        bool, typer.Option("--force", help="Skip the policy gates (recorded as forced).")
    ] = False,
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    workflow_file: Annotated[
        Path | None, typer.Option("--workflow", help="Workflow YAML with a `promotion:` section.")
    ] = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
    live_traffic: Annotated[
        str | None,
        typer.Option(
            envvar="NLU_MLFLOW_LIVE_TRAFFIC",
            help="Rasa's SQL tracker store (URL or endpoints.yml): replay its last --live-window through "
            "VERSION and production again when the figures recorded on VERSION are older than that.",
        ),
    ] = None,
    live_window: Annotated[str, typer.Option(help="How far back the replay reads.")] = "7d",
) -> None:
    """Promote VERSION if it passes the policy against production (exit 3 when a gate fails); shows the
    live-traffic figures recorded on VERSION first."""
    _connect(tracking_uri, experiment)
    with known_errors(MANUAL_EXIT_STATUS):
        policy = workflow_settings.read_policy(workflow_file)
        live = replay.LiveTraffic(replay.tracker_url(live_traffic), live_window) if live_traffic else None
        decision, promoted = manual.promote(model_name, version, policy, force, live)
        shown = manual.live_lines(model_name, version)
    for line in shown:
        logs.echo(line)
    for reason in decision.reasons if decision else []:
        logs.echo(reason)
    if not promoted:
        logs.echo(
            f"kept: version {version} did not pass the gates; pass --force to promote it anyway", err=True
        )
        raise typer.Exit(EXIT_GATES_FAILED)
    logs.echo(f"promoted {model_name} version {version} to production{' (forced)' if force else ''}")


@app.command()
def rollback(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
) -> None:
    """Put the previous production version back (alias previous-production); recorded."""
    _connect(tracking_uri, experiment)
    with known_errors(MANUAL_EXIT_STATUS):
        restored, replaced = manual.rollback(model_name)
    back = f"version {restored.version} is in production again (was {replaced.version})"
    logs.echo(f"rolled back {model_name}: {back}")


@app.command(hidden=True)
def candidate(
    parent_run_id: Annotated[
        str, typer.Option(help="The workflow run whose inputs/ the candidate trains on.")
    ],
    config: Annotated[str, typer.Option(help="The candidate's config name (inputs/configs/NAME.yml).")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train and score one candidate of a workflow run in the MLflow run started for it (the MLproject's
    `candidate` entry point, run by the local and kubernetes backends). Exit status 1 when it fails."""
    from nlu_mlflow.workflow import backends

    logs.setup(verbose)
    try:
        backends.run_one(parent_run_id, config)
    except (CandidateFailed, TrackingError) as error:
        raise fail(error, exit_status(error, EXIT_STATUS)) from None


@app.command()
def history(
    model_name: Annotated[
        str | None, typer.Option(help="Only this registered model (default: every model).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows, newest first.")] = 50,
    include_kept: Annotated[
        bool, typer.Option("--all", help="Also the workflow decisions that kept production as it was.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Every change of production, newest first: when, from which version to which, by which run, why.

    A promotion that was recorded but never carried out (the run stopped before moving) shows as NOT MOVED.
    """
    logs.setup(False)
    with known_errors(MANUAL_EXIT_STATUS):
        runs.open_store(
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or runs.default_tracking_uri(Path.cwd())
        )
        found = production_history.read(model_name, limit, include_kept)
    logs.echo(json.dumps(found.to_dict(), indent=2) if as_json else found.table())


@app.command()
def ui_hint(tracking_uri: TrackingUri = None) -> None:
    """Print the command that opens the MLflow UI on the store in use."""
    uri = tracking_uri or runs.default_tracking_uri(Path.cwd())
    logs.echo(f"mlflow ui --backend-store-uri {uri} --port 5000   # then open http://127.0.0.1:5000")


app.add_typer(webhooks_app, name="webhooks")
app.add_typer(inbox_app, name="inbox")
app.command("sync-rasa")(sync_rasa)
app.command("tune-worker")(tune_worker)

if __name__ == "__main__":
    app()
