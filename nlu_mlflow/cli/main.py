"""Command line: parse options, call one library function, turn known errors into one sentence."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.cli import logs, run_options
from nlu_mlflow.cli.tune import tune_worker
from nlu_mlflow.cli.webhooks import EXIT_REFUSED, slack_url_from_env, sync_rasa, webhooks_app
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import runs
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow import lock, manual, record
from nlu_mlflow.workflow import settings as workflow_settings
from nlu_mlflow.workflow.remote import RemoteDataError
from nlu_mlflow.workflow.run import run as run_workflow

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    help="Continuous training for Rasa NLU on MLflow.",
)

EXIT_INPUT_ERROR = 2
EXIT_GATES_FAILED = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron may simply try again later
STOPPED = "the workflow stopped and promoted nothing after that point (its runs may still show RUNNING)"

TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: sqlite:///mlruns.db here)."
    ),
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


def _fail(error: Exception, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    for line in str(error).splitlines():
        logs.echo(f"error: {line}", err=True)
    return typer.Exit(code)


def run(**values: Any) -> None:
    """Train and evaluate every pipeline, register the best, promote it if it beats production.

    Exit status 0 when the workflow completed (promoted or kept: see the last line and --summary-json);
    2 for bad input; 1 for other errors (data fetch, registry, training); 75 when another run holds the lock.
    """
    given = run_options.split(values)
    own = given.own
    logs.setup(own["verbose"], own["log_file"])
    policy = {**given.policy, "significance_alpha": _alpha(given.policy["significance_alpha"])}
    notify_url = slack_url_from_env(own["notify_env"])
    result, settings = _run_workflow(given.settings, policy, own, notify_url)
    table = record.summary_table(result, settings.primary_metric)
    logs.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    logs.echo(f"\nparent run: {result.run_id} ({result.tracking_uri})")
    _tell(notify_url, f"nlu-mlflow run {result.run_id}: {result.outcome.message}")
    logs.echo(result.outcome.message)


run.__signature__ = run_options.signature()  # the options are declared once, in run_options.OPTIONS
app.command()(run)


def _run_workflow(settings_values: dict, policy: dict, own: dict, notify_url: str | None):
    """Build the settings and run the workflow under the lock; known errors become one sentence."""
    try:
        with lock.exclusive(own["lock_file"]):
            settings = workflow_settings.build(settings_values, own["workflow_file"], policy)
            return run_workflow(settings), settings
    except lock.LockedError as error:
        logs.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_LOCKED) from None
    except InputError as error:
        _tell(notify_url, f"nlu-mlflow run FAILED: {error.problems[0]}")
        raise _fail(error) from None
    except AccessError as error:  # refused login or permission: nothing was changed by the refused call
        _tell(notify_url, f"nlu-mlflow run FAILED: {error}")
        raise _fail(error, EXIT_REFUSED) from None
    except (RegistryError, RemoteDataError) as error:
        kept = (
            "; the runs and their artifacts are kept in the tracking store"
            if isinstance(error, RegistryError)
            else ""
        )
        _tell(notify_url, f"nlu-mlflow run FAILED: {error}")
        logs.echo(f"error: {error}{kept}", err=True)
        raise typer.Exit(1) from None
    except TrackingError as error:
        message = f"{error}; {STOPPED}"
        _tell(notify_url, f"nlu-mlflow run FAILED: {message}")
        logs.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None
    except Exception as error:
        _tell(notify_url, f"nlu-mlflow run FAILED: {type(error).__name__}; see the log")
        raise


def _tell(url: str | None, text: str) -> None:
    """Post a one-line run outcome to a Slack-compatible webhook, when one is configured."""
    if url:
        from nlu_mlflow.receiver import notify

        notify.announce(url, notify.text_message(text))


def _alpha(value: str | None) -> float | str | None:
    if value is None or value.lower() in ("off", "none", "false"):
        return value and "off"
    try:
        return float(value)
    except ValueError:
        raise _fail(
            InputError(f"--significance-alpha {value!r}: give a number in (0, 1) or 'off'.")
        ) from None


ModelName = Annotated[str, typer.Option(help="Registered model name.")]


@contextlib.contextmanager
def _known_errors() -> Iterator[None]:
    """Known errors as one sentence each: bad input or a refused registry call exit 2, a refused login or
    permission 77, other tracking failures (a server that is down) exit 1."""
    try:
        yield
    except AccessError as error:
        raise _fail(error, EXIT_REFUSED) from None
    except (InputError, RegistryError) as error:
        raise _fail(error) from None
    except TrackingError as error:
        raise _fail(error, 1) from None


def _connect(tracking_uri: str | None, experiment: str) -> None:
    logs.setup(False)
    with _known_errors():
        runs.configure(tracking_uri, experiment)


@app.command()
def status(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
) -> None:
    """Which version is in production, since when, from which run and config, with its scores."""
    _connect(tracking_uri, experiment)
    with _known_errors():
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
) -> None:
    """Promote VERSION if it passes the policy against production (exit 3 when a gate fails)."""
    _connect(tracking_uri, experiment)
    with _known_errors():
        policy = workflow_settings.read_policy(workflow_file)
        decision, promoted = manual.promote(model_name, version, policy, force)
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
    with _known_errors():
        restored, replaced = manual.rollback(model_name)
    back = f"version {restored.version} is in production again (was {replaced.version})"
    logs.echo(f"rolled back {model_name}: {back}")


@app.command()
def ui_hint(tracking_uri: TrackingUri = None) -> None:
    """Print the command that opens the MLflow UI on the store in use."""
    uri = tracking_uri or runs.default_tracking_uri(Path.cwd())
    logs.echo(f"mlflow ui --backend-store-uri {uri} --port 5000   # then open http://127.0.0.1:5000")


app.add_typer(webhooks_app, name="webhooks")
app.command("sync-rasa")(sync_rasa)
app.command("tune-worker")(tune_worker)

if __name__ == "__main__":
    app()
