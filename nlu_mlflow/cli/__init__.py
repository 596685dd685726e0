"""Command-line adapters (typer): parse options, call one library function, turn known errors into one
sentence and an exit status. Nothing imports this layer."""

from nlu_mlflow.cli.main import app

__all__ = ["app"]
