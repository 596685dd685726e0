"""`nlu-mlflow run`'s options are declared once and land in WorkflowSettings and the policy by name."""

import dataclasses

from nlu_mlflow.cli import run_options
from nlu_mlflow.decide.promotion import PromotionPolicy
from nlu_mlflow.workflow.settings import WorkflowSettings
from tests.helpers.cli import invoke

OWN = {"workflow_file", "lock_file", "log_file", "notify_env", "verbose"}


def test_every_setting_and_policy_field_has_exactly_one_option():
    names = [o.name for o in run_options.OPTIONS]
    assert len(names) == len(set(names))
    settings = {f.name for f in dataclasses.fields(WorkflowSettings)} - {"policy", "project_dir"}
    policy = {f.name for f in dataclasses.fields(PromotionPolicy)}
    assert set(names) == settings | policy | OWN


def test_parsed_values_are_sorted_by_what_they_set():
    values = {o.name: f"value of {o.name}" for o in run_options.OPTIONS}
    split = run_options.split(values)
    assert set(split.settings) <= {f.name for f in dataclasses.fields(WorkflowSettings)}
    assert set(split.policy) == {f.name for f in dataclasses.fields(PromotionPolicy)}
    assert set(split.own) == OWN
    assert split.settings["data"] == "value of data" and split.policy["min_gain"] == "value of min_gain"


def test_help_lists_every_declared_option():
    result = invoke(["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for flag in (
        "--data",
        "--test-data",
        "--workflow",
        "--no-register",
        "--significance-alpha",
        "--cv-folds",
    ):
        assert flag in result.output
