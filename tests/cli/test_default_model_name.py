"""One default model name, whichever way the workflow starts: the pizza assistant registers as
`rasa-assistant` through `make demo` (the workflow file) and through `mlflow run <repo> --env-manager local`
(the MLproject's `main` entry point with its defaults); NLU data alone registers as `rasa-nlu`.

The MLproject path parses the very command line MLflow builds from the MLproject (each parameter substituted
shell-quoted, as MLflow does) with the `run` command's own parser; `mlflow run` itself is not started."""

from __future__ import annotations

import shlex

import pytest
import typer
import yaml

from nlu_mlflow.cli import app, run_options
from nlu_mlflow.decide.model_kind import default_model_name
from nlu_mlflow.workflow import settings
from tests.helpers import ROOT


def mlproject_settings(entry: str, **parameters: str) -> settings.WorkflowSettings:
    spec = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"][entry]
    values = {name: str(p.get("default", "")) for name, p in spec["parameters"].items()} | parameters
    command = spec["command"].format(**{k: shlex.quote(v) for k, v in values.items()})
    argv = shlex.split(command)
    argv = argv[argv.index("run") + 1 :]
    context = typer.main.get_command(app).commands["run"].make_context("run", argv)
    given = run_options.split(dict(context.params))
    return settings.build(given.settings, given.own["workflow_file"])


def test_make_demo_and_mlflow_run_register_the_assistant_under_one_name():
    demo = settings.build({}, ROOT / "nlu-mlflow.yml")  # `make demo`: run --workflow nlu-mlflow.yml
    mlflow_run = mlproject_settings("main")
    assert (
        demo.project == ROOT / mlflow_run.project == ROOT / "data" / "pizza-assistant"
    )  # mlflow runs in ROOT
    assert demo.model_name == mlflow_run.model_name == default_model_name(True) == "rasa-assistant"


@pytest.mark.parametrize(
    "entry, parameters",
    [
        pytest.param("main", {"project": "", "data": "data/pizza/train.yml"}, id="main-with-nlu-data"),
        pytest.param("train", {}, id="train-entry-point"),
    ],
)
def test_nlu_data_alone_registers_an_nlu_model(entry, parameters):
    assert mlproject_settings(entry, **parameters).model_name == default_model_name(False) == "rasa-nlu"
