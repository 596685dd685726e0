"""Command line: parse options, call one library function, turn known errors into one sentence."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    help="Continuous training for Rasa NLU on MLflow.",
)

EXIT_INPUT_ERROR = 2

TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: sqlite:///mlruns.db here)."
    ),
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("nlu_mlflow").setLevel(logging.DEBUG if verbose else logging.INFO)


def _fail(error: Exception, code: int = EXIT_INPUT_ERROR) -> typer.Exit:
    for line in str(error).splitlines():
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(code)


@app.command()
def run(
    data: Annotated[Path, typer.Option(help="Rasa NLU training data: a YAML/JSON file or a folder.")],
    test_data: Annotated[
        Path | None, typer.Option(help="Held-out Rasa NLU test data; without it a stratified split is used.")
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of --data held out when no --test-data.")] = 0.2,
    seed: Annotated[
        int, typer.Option(help="Seed for the split and for components' random_seed.")
    ] = c.DEFAULT_SEED,
    configs: Annotated[
        Path, typer.Option(help="Folder of Rasa pipeline configs (or one config file).")
    ] = Path("configs"),
    epochs: Annotated[
        int, typer.Option(min=0, help="Cap on training epochs for every pipeline (0: as configured).")
    ] = 0,
    experiment: Experiment = c.DEFAULT_EXPERIMENT,
    tracking_uri: TrackingUri = None,
    primary_metric: Annotated[
        str, typer.Option(help="Metric that picks the best candidate.")
    ] = c.INTENT_F1_WEIGHTED,
    min_examples: Annotated[int, typer.Option(min=1, help="Fewest training examples an intent may have.")] = (
        c.DEFAULT_MIN_EXAMPLES_PER_INTENT
    ),
    allow_conflicts: Annotated[
        bool, typer.Option(help="Accept the same text under two intents (reported as an error otherwise).")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More progress output.")] = False,
) -> None:
    """Train and evaluate every pipeline in --configs, each as an MLflow run, and pick the best."""
    from nlu_mlflow import workflow

    _setup_logging(verbose)
    settings = workflow.WorkflowSettings(
        data=data,
        test_data=test_data,
        test_fraction=test_fraction,
        seed=seed,
        configs=configs,
        epochs=epochs or None,
        experiment=experiment,
        tracking_uri=tracking_uri,
        primary_metric=primary_metric,
        min_examples=min_examples,
        allow_conflicts=allow_conflicts,
    )
    try:
        result = workflow.run(settings)
    except InputError as error:
        raise _fail(error) from None
    table = workflow.summary_table(result, primary_metric)
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"\nparent run: {result.run_id} ({result.tracking_uri})")
    typer.echo(f"best: {result.selection.best or 'none'}")


@app.command()
def ui_hint(tracking_uri: TrackingUri = None) -> None:
    """Print the command that opens the MLflow UI on the store in use."""
    from nlu_mlflow import tracking

    uri = tracking_uri or tracking.default_tracking_uri(Path.cwd())
    typer.echo(f"mlflow ui --backend-store-uri {uri} --port 5000   # then open http://127.0.0.1:5000")


if __name__ == "__main__":
    app()
