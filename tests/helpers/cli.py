"""The command line as the tests call it: ``nlu-mlflow run`` argument lists and one way to invoke them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from . import CONFIGS, PIZZA


def run_args(
    tmp_path: Path,
    tracking_uri: str,
    data: Path | str = PIZZA / "train.yml",
    test_data: Path | str | None = PIZZA / "test.yml",
    configs: Path | str = CONFIGS / "logreg_crf.yml",
    epochs: int = 1,
    *extra: object,
) -> list[str]:
    """``run`` on the pizza data with the light pipeline, one epoch, its own store and lock file."""
    args = ["run", "--data", str(data)]
    if test_data is not None:
        args += ["--test-data", str(test_data)]
    args += ["--configs", str(configs), "--epochs", str(epochs), "--tracking-uri", tracking_uri]
    args += ["--lock-file", str(tmp_path / "run.lock")]
    return args + [str(x) for x in extra]


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    """Run ``nlu-mlflow ARGS`` in this process (``CliRunner``)."""
    from nlu_mlflow.cli import app

    return CliRunner().invoke(app, args, env=env)
