"""`nlu-mlflow tune-worker`: one more worker for a search that `nlu-mlflow run --trials` started.

Run it on any machine (or as a Kubernetes Job with `parallelism: N`) that reaches the study's storage and the
tracking server; everything else (config, data, seed, metric, the run the trials nest under) is read from the
study. The storage URL may hold a password: give it through the environment, it is never printed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nlu_mlflow.cli import logs
from nlu_mlflow.cli.exits import EXIT_FAILED, EXIT_INPUT_ERROR, EXIT_REFUSED
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.workflow import tune

STORAGE_ENV = "NLU_MLFLOW_STUDY_STORAGE"


def tune_worker(
    study: Annotated[str, typer.Option(help="The study to join (param search.study of the config's run).")],
    study_storage: Annotated[
        str,
        typer.Option(
            envvar=STORAGE_ENV, help="The study's Optuna storage URL, as the workflow was given it."
        ),
    ] = f"sqlite:///{tune.STORAGE_FILE}",
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            envvar="MLFLOW_TRACKING_URI",
            help="MLflow tracking URI as this machine reaches it (default: the one the study names).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of this worker's sampler (default: a random one, logged).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More progress output.")] = False,
) -> None:
    """Run trials of STUDY until it holds the number of trials its workflow asked for.

    Exit status 0 when the study is full; 2 for a study or storage that is not there; 77 when the tracking
    server refuses the login or a permission; 1 for other errors.
    """
    logs.setup(verbose)
    try:
        result = tune.join(study, study_storage, tracking_uri, seed)
    except InputError as error:
        logs.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except AccessError as error:
        logs.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except TrackingError as error:
        logs.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    logs.echo(result.line())
