"""Command line: parse options, call one library function, turn known errors into one sentence."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.cli import logs, run_options
from nlu_mlflow.cli.inbox import inbox_app
from nlu_mlflow.cli.tune import tune_worker
from nlu_mlflow.cli.webhooks import EXIT_REFUSED, slack_url_from_env, sync_rasa, webhooks_app
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import history as production_history
from nlu_mlflow.tracking import runs
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.tracking.registry import RegistryError
from nlu_mlflow.workflow import lock, manual, record
from nlu_mlflow.workflow import settings as workflow_settings
from nlu_mlflow.workflow.champion import ChampionUnusable
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
EXIT_FAILED_CANDIDATES = 4  # the workflow completed, but at least one config failed to train or score
EXIT_CHAMPION_UNUSABLE = 5  # production cannot be loaded or scored: nothing registered, production kept
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron may simply try again later
STOPPED = "the workflow stopped and promoted nothing after that point (its runs may still show RUNNING)"

TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: sqlite:///mlruns.db here)."
    ),
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


def _fail(error: Exception | str, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    _last_error["text"] = str(error)
    for line in str(error).splitlines():
        logs.echo(f"error: {line}", err=True)
    return typer.Exit(code)


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
    policy = {
        **given.policy,
        "significance_alpha": _off_or_number("--significance-alpha", given.policy["significance_alpha"]),
        "max_core_action_f1_drop": _off_or_number(
            "--max-core-action-f1-drop", given.policy["max_core_action_f1_drop"]
        ),
    }
    notify_url = slack_url_from_env(own["notify_env"])
    summary_json = _summary_path(given.settings, own)
    started = _now()
    _write_summary(summary_json, {"decision": "running", "message": "the run has not finished", **started})
    try:
        result, settings = _run_workflow(given.settings, policy, own, notify_url)
    except typer.Exit as stop:
        if stop.exit_code != EXIT_LOCKED:  # a locked run leaves the running run's file alone
            _write_failure(summary_json, given.settings, _last_error.get("text") or "the run failed", started)
        raise
    except BaseException as error:
        _write_failure(summary_json, given.settings, f"{type(error).__name__}: {error}", started)
        raise
    table = record.summary_table(result, settings.primary_metric)
    logs.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    logs.echo(f"\nparent run: {result.run_id} ({result.tracking_uri})")
    failed = "; ".join(f"{x.name} FAILED ({x.reason})" for x in result.failed)
    _tell(
        notify_url,
        f"nlu-mlflow run {result.run_id}: {result.outcome.message}" + (f"; {failed}" if failed else ""),
    )
    logs.echo(result.outcome.message)
    if result.failed:
        logs.echo(f"{len(result.failed)} config(s) failed: {failed}", err=True)
        raise typer.Exit(EXIT_FAILED_CANDIDATES)


run.__signature__ = run_options.signature()  # the options are declared once, in run_options.OPTIONS
app.command()(run)


_last_error: dict[str, str] = {}  # the sentence the last failure printed, for the summary file


def _now() -> dict:
    from nlu_mlflow.decide.summary import now_iso

    return {"decided_at": now_iso()}


def _summary_path(settings_values: dict, own: dict) -> Path | None:
    """--summary-json, else the workflow file's ``summary_json`` (read without building the settings, which
    may be what fails)."""
    if settings_values.get("summary_json"):
        return Path(settings_values["summary_json"])
    try:
        document = workflow_settings.read_workflow_file(own["workflow_file"]) if own["workflow_file"] else {}
    except InputError:
        return None
    return document.get("summary_json")


def _write_summary(path: Path | None, data: dict) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            record.write_summary(path, data)


def _write_failure(path: Path | None, settings_values: dict, error: str, started: dict) -> None:
    """The failure summary, unless the workflow already wrote its own (with the run's id) in this run."""
    import json

    from nlu_mlflow.decide.summary import failure

    if path is not None and Path(path).is_file():
        with contextlib.suppress(OSError, ValueError):
            written = json.loads(Path(path).read_text())
            if (
                written.get("decision") == c.DECISION_FAILED
                and written.get("decided_at", "") >= started["decided_at"]
            ):
                return
    model = settings_values.get("model_name") or c.DEFAULT_MODEL_NAME
    _write_summary(path, failure(None, None, model, error))


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
    except ChampionUnusable as error:  # recorded on the parent run; production untouched
        _tell(notify_url, f"nlu-mlflow run FAILED: {error}")
        raise _fail(error, EXIT_CHAMPION_UNUSABLE) from None
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
        raise _fail(f"{error}{kept}", 1) from None
    except TrackingError as error:
        message = f"{error}; {STOPPED}"
        _tell(notify_url, f"nlu-mlflow run FAILED: {message}")
        raise _fail(message, 1) from None
    except Exception as error:
        _tell(notify_url, f"nlu-mlflow run FAILED: {type(error).__name__}; see the log")
        raise


def _tell(url: str | None, text: str) -> None:
    """Post a one-line run outcome to a Slack-compatible webhook, when one is configured."""
    if url:
        from nlu_mlflow.receiver import notify

        notify.announce(url, notify.text_message(text))


def _off_or_number(flag: str, value: str | None) -> float | str | None:
    if value is None or value.lower() in ("off", "none", "false"):
        return value and "off"
    try:
        return float(value)
    except ValueError:
        raise _fail(InputError(f"{flag} {value!r}: give a number or 'off'.")) from None


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
    from nlu_mlflow.workflow.candidates import CandidateFailed

    logs.setup(verbose)
    try:
        backends.run_one(parent_run_id, config)
    except CandidateFailed as error:
        raise _fail(error, 1) from None
    except TrackingError as error:
        raise _fail(error, 1) from None


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
    with _known_errors():
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
