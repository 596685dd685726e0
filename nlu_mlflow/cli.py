"""Command line: parse options, call one library function, turn known errors into one sentence."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nlu_mlflow import constants as c
from nlu_mlflow import logs, runlock
from nlu_mlflow.cli_webhooks import sync_rasa, webhooks_app
from nlu_mlflow.errors import InputError
from nlu_mlflow.runlock import DEFAULT_LOCK_FILE

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    help="Continuous training for Rasa NLU on MLflow.",
)

EXIT_INPUT_ERROR = 2
EXIT_GATES_FAILED = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron may simply try again later
NOTIFY_ENV = "NLU_MLFLOW_SLACK_URL"

TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: sqlite:///mlruns.db here)."
    ),
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


def _fail(error: Exception, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    for line in str(error).splitlines():
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(code)


@app.command()
def run(
    data: Annotated[
        str | None,
        typer.Option(help="Rasa NLU training data: a YAML/JSON file, a folder, or an http(s) URL."),
    ] = None,
    test_data: Annotated[
        Path | None, typer.Option(help="Held-out Rasa NLU test data; without it a stratified split is used.")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="Share of --data held out when no --test-data [0.2].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for the split and for components' random_seed [42].")
    ] = None,
    configs: Annotated[
        Path | None, typer.Option(help="Folder of Rasa pipeline configs, or one config [configs].")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=0, help="Cap on training epochs for every pipeline (0: as configured).")
    ] = None,
    critical: Annotated[
        Path | None, typer.Option(help="Critical-utterance suite (YAML) every candidate must pass.")
    ] = None,
    workflow_file: Annotated[
        Path | None,
        typer.Option("--workflow", help="Workflow YAML with these settings and a `promotion:` section."),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help=f"MLflow experiment name [{c.DEFAULT_EXPERIMENT}].")
    ] = None,
    tracking_uri: TrackingUri = None,
    model_name: Annotated[
        str | None, typer.Option(help=f"Registered model name [{c.DEFAULT_MODEL_NAME}].")
    ] = None,
    register: Annotated[
        bool | None, typer.Option("--register/--no-register", help="Register the best candidate.")
    ] = None,
    promote: Annotated[
        bool | None, typer.Option("--promote/--no-promote", help="Move `production` when the candidate wins.")
    ] = None,
    primary_metric: Annotated[
        str | None, typer.Option(help="Metric that picks the best and must improve.")
    ] = None,
    min_gain: Annotated[
        float | None, typer.Option(help="Required gain over production on the primary metric.")
    ] = None,
    max_entity_f1_drop: Annotated[float | None, typer.Option(help="Largest allowed entity F1 drop.")] = None,
    intent_min_support: Annotated[
        int | None, typer.Option(help="Per-intent guard: intents with this many test examples.")
    ] = None,
    max_intent_f1_drop: Annotated[
        float | None, typer.Option(help="Per-intent guard: largest allowed F1 drop.")
    ] = None,
    min_critical_pass_rate: Annotated[
        float | None, typer.Option(help="Critical pass rate a candidate must reach.")
    ] = None,
    significance_alpha: Annotated[
        str | None,
        typer.Option(help="McNemar test on per-utterance correctness at this alpha ('off' to disable)."),
    ] = None,
    min_examples: Annotated[
        int | None, typer.Option(min=1, help="Fewest training examples an intent may have [2].")
    ] = None,
    allow_conflicts: Annotated[
        bool | None, typer.Option("--allow-conflicts", help="Accept the same text under two intents.")
    ] = None,
    cv_folds: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Cross-validate every pipeline with K seeded stratified folds of --data instead of "
            "evaluating on the test data; logs mean, std and per-fold values; registers nothing.",
        ),
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="Write the decision summary as JSON here.")
    ] = None,
    report_md: Annotated[Path | None, typer.Option(help="Write the markdown comparison report here.")] = None,
    data_token_env: Annotated[
        str | None,
        typer.Option(help="Env variable holding the token for URL --data [NLU_MLFLOW_DATA_TOKEN]."),
    ] = None,
    data_token_header: Annotated[
        str | None, typer.Option(help="Header carrying that token [Authorization: Bearer <token>].")
    ] = None,
    data_timeout: Annotated[float | None, typer.Option(help="Seconds to wait for URL --data [30].")] = None,
    data_retries: Annotated[
        int | None, typer.Option(min=0, help="Retries for URL --data, with backoff [3].")
    ] = None,
    lock_file: Annotated[Path, typer.Option(help="Lock that keeps two runs from overlapping (cron).")] = Path(
        DEFAULT_LOCK_FILE
    ),
    log_file: Annotated[Path | None, typer.Option(help="Also append the log to this file.")] = None,
    notify_env: Annotated[
        str, typer.Option(help="Env variable with a Slack-compatible webhook URL told about every run.")
    ] = NOTIFY_ENV,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More progress output.")] = False,
) -> None:
    """Train and evaluate every pipeline, register the best, promote it if it beats production.

    Exit status 0 when the workflow completed (promoted or kept: see the last line and --summary-json);
    2 for bad input; 1 for other errors (data fetch, registry, training); 75 when another run holds the lock.
    """
    from mlflow.exceptions import MlflowException

    from nlu_mlflow import settings as workflow_settings
    from nlu_mlflow import tracking, workflow
    from nlu_mlflow.registry import RegistryError
    from nlu_mlflow.remote import RemoteDataError

    logs.setup(verbose, log_file)
    cli_values = {
        "data": data,
        "test_data": test_data,
        "test_fraction": test_fraction,
        "seed": seed,
        "configs": configs,
        "epochs": epochs,
        "critical": critical,
        "experiment": experiment,
        "tracking_uri": tracking_uri,
        "model_name": model_name,
        "register": register,
        "promote": promote,
        "min_examples": min_examples,
        "allow_conflicts": allow_conflicts,
        "cv_folds": cv_folds,
        "summary_json": summary_json,
        "report_md": report_md,
        "data_token_env": data_token_env,
        "data_token_header": data_token_header,
        "data_timeout": data_timeout,
        "data_retries": data_retries,
    }
    overrides = {
        "primary_metric": primary_metric,
        "min_gain": min_gain,
        "max_entity_f1_drop": max_entity_f1_drop,
        "intent_min_support": intent_min_support,
        "max_intent_f1_drop": max_intent_f1_drop,
        "min_critical_pass_rate": min_critical_pass_rate,
        "significance_alpha": _alpha(significance_alpha),
    }
    notify_url = os.environ.get(notify_env)
    try:
        with runlock.exclusive(lock_file):
            settings = workflow_settings.build(cli_values, workflow_file, overrides)
            result = workflow.run(settings)
    except runlock.LockedError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_LOCKED) from None
    except InputError as error:
        _tell(notify_url, f"nlu-mlflow run FAILED: {error.problems[0]}")
        raise _fail(error) from None
    except (RegistryError, RemoteDataError) as error:
        kept = (
            "; the runs and their artifacts are kept in the tracking store"
            if isinstance(error, RegistryError)
            else ""
        )
        _tell(notify_url, f"nlu-mlflow run FAILED: {error}")
        typer.echo(f"error: {error}{kept}", err=True)
        raise typer.Exit(1) from None
    except MlflowException as error:
        message = tracking.failure_message(error)
        _tell(notify_url, f"nlu-mlflow run FAILED: {message}")
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None
    except Exception as error:
        _tell(notify_url, f"nlu-mlflow run FAILED: {type(error).__name__}; see the log")
        raise
    table = workflow.summary_table(result, settings.primary_metric)
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"\nparent run: {result.run_id} ({result.tracking_uri})")
    _tell(notify_url, f"nlu-mlflow run {result.run_id}: {result.outcome.message}")
    typer.echo(result.outcome.message)


def _tell(url: str | None, text: str) -> None:
    """Post a one-line run outcome to a Slack-compatible webhook, when one is configured."""
    if url:
        from nlu_mlflow import notify

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


def _connect(tracking_uri: str | None, experiment: str) -> None:
    from nlu_mlflow import tracking

    logs.setup(False)
    tracking.configure(tracking_uri, experiment)


@app.command()
def status(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
) -> None:
    """Which version is in production, since when, from which run and config, with its scores."""
    from nlu_mlflow import lifecycle

    _connect(tracking_uri, experiment)
    for line in lifecycle.status(model_name).lines():
        typer.echo(line)


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
    from nlu_mlflow import lifecycle, settings
    from nlu_mlflow.registry import RegistryError

    _connect(tracking_uri, experiment)
    try:
        document = settings.read_workflow_file(workflow_file) if workflow_file else {}
        policy = settings.PromotionPolicy.from_mapping(
            document.get("promotion"), str(workflow_file or "defaults")
        )
        decision, promoted = lifecycle.promote(model_name, version, policy, force)
    except (InputError, RegistryError) as error:
        raise _fail(error) from None
    for reason in decision.reasons if decision else []:
        typer.echo(reason)
    if not promoted:
        typer.echo(
            f"kept: version {version} did not pass the gates; pass --force to promote it anyway", err=True
        )
        raise typer.Exit(EXIT_GATES_FAILED)
    typer.echo(f"promoted {model_name} version {version} to production{' (forced)' if force else ''}")


@app.command()
def rollback(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
) -> None:
    """Put the previous production version back (alias previous-production); recorded."""
    from nlu_mlflow import lifecycle

    _connect(tracking_uri, experiment)
    try:
        restored, replaced = lifecycle.rollback(model_name)
    except InputError as error:
        raise _fail(error) from None
    back = f"version {restored.version} is in production again (was {replaced.version})"
    typer.echo(f"rolled back {model_name}: {back}")


@app.command()
def ui_hint(tracking_uri: TrackingUri = None) -> None:
    """Print the command that opens the MLflow UI on the store in use."""
    from nlu_mlflow import tracking

    uri = tracking_uri or tracking.default_tracking_uri(Path.cwd())
    typer.echo(f"mlflow ui --backend-store-uri {uri} --port 5000   # then open http://127.0.0.1:5000")


app.add_typer(webhooks_app, name="webhooks")
app.command("sync-rasa")(sync_rasa)

if __name__ == "__main__":
    app()
