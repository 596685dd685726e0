"""`nlu-mlflow history` on a real MLflow store after a sequence of production changes.

The sequence (light pipelines, one epoch, the pizza data): a workflow promotes version 1; a workflow keeps it
(version 2 is no better); `promote 2 --force` and `rollback` in another experiment; a workflow whose move of
production crashes after its decision was recorded (the crash is injected: ``registry.move_production``
raises, as a killed process or a lost connection would leave it). History must list every change newest
first with the right from/to/by/why, the crashed promotion as NOT MOVED, and parse as JSON.
"""

from __future__ import annotations

import json

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings
from tests.helpers import CONFIGS, PIZZA, TEST_DATA
from tests.helpers.cli import invoke

pytestmark = pytest.mark.slow

MODEL = "history-nlu"
OPS = "ops"  # the experiment the manual commands log to: history reads every experiment


class InjectedCrash(RuntimeError):
    """Stands for the process dying between recording the decision and moving production."""


def run_workflow(home, uri, config):
    return workflow.run(
        settings.build(
            {
                "data": PIZZA / "train.yml",
                "test_data": PIZZA / "test.yml",
                "configs": config,
                "epochs": 1,
                "tracking_uri": uri,
                "model_name": MODEL,
                "project_dir": home,
            }
        )
    )


def cli(uri, *args):
    result = invoke([*args, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    home = tmp_path_factory.mktemp("history")
    uri = f"sqlite:///{home / 'mlruns.db'}"
    runs = {}
    runs["promoted"] = run_workflow(home, uri, TEST_DATA / "configs" / "weak_crf.yml").run_id
    kept = run_workflow(home, uri, TEST_DATA / "configs" / "weak_crf.yml")
    assert kept.outcome.decision is not None and not kept.outcome.promoted, kept.outcome.message
    runs["kept"] = kept.run_id
    # version 2 as a fine-tuning workflow tags the versions it registers (another feature writes this tag)
    mlflow.MlflowClient(uri).set_model_version_tag(MODEL, "2", c.TAG_FINETUNED_FROM, "1")
    cli(uri, "promote", "2", "--force", "--model-name", MODEL, "--experiment", OPS)
    cli(uri, "rollback", "--model-name", MODEL, "--experiment", OPS)

    def crash(name, version):
        raise InjectedCrash(f"killed before moving {name} to version {version}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "move_production", crash)
        with pytest.raises(InjectedCrash):
            run_workflow(home, uri, CONFIGS / "logreg_crf.yml")
    return uri, runs


def history(uri, *args) -> dict:
    return json.loads(cli(uri, "history", "--model-name", MODEL, "--json", *args))


def manual_runs(uri) -> dict[str, str]:
    found = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name(OPS).experiment_id],
        f"tags.`{c.TAG_ROLE}` = '{c.ROLE_MANUAL}'",
    )
    return {run.data.tags[c.TAG_DECISION]: run.info.run_id for run in found}


def test_every_change_newest_first_with_from_to_by_and_why(sequence):
    uri, runs = sequence
    manual = manual_runs(uri)
    data = history(uri)
    rows = [
        (x["action"], x["from_version"], x["to_version"], x["moved"], x["by"], x["run_id"])
        for x in data["changes"]
    ]
    crashed = data["changes"][0]["run_id"]
    assert rows == [
        (c.DECISION_PROMOTED, "1", "3", False, c.ROLE_WORKFLOW, crashed),
        (c.DECISION_ROLLBACK, "2", "1", True, c.ROLE_MANUAL, manual[c.DECISION_ROLLBACK]),
        (c.DECISION_FORCED, "1", "2", True, c.ROLE_MANUAL, manual[c.DECISION_FORCED]),
        (c.DECISION_PROMOTED, None, "1", True, c.ROLE_WORKFLOW, runs["promoted"]),
    ]
    assert crashed not in runs.values()
    why = {x["action"]: x["why"] for x in data["changes"][1:]}
    assert (
        why[c.DECISION_ROLLBACK].startswith("rollback by ") and "from version 2" in why[c.DECISION_ROLLBACK]
    )
    assert why[c.DECISION_FORCED].startswith("forced by ")
    assert "primary_metric passed" in why[c.DECISION_PROMOTED], why[c.DECISION_PROMOTED]
    assert data["changes"][2]["finetuned_from"] == "1"
    assert data["production"] == {MODEL: "1"} and data["warnings"] == []
    # the times are the moves' own, in order
    times = [x["at"] for x in data["changes"]]
    assert times == sorted(times, reverse=True)


def test_recorded_but_not_moved_is_distinguishable(sequence):
    uri, _ = sequence
    [row] = [x for x in history(uri)["changes"] if not x["moved"]]
    assert (row["state"], row["run_status"], row["to_version"]) == ("not moved", "FAILED", "3")
    run = mlflow.MlflowClient(uri).get_run(row["run_id"])
    assert run.data.tags[c.TAG_DECISION] == c.DECISION_PROMOTED  # what was decided is on record ...
    assert c.TAG_PRODUCTION_MOVED not in run.data.tags  # ... and that it was not carried out
    assert registry.alias_holder(MODEL).version == "1"
    table = cli(uri, "history", "--model-name", MODEL)
    [line] = [x for x in table.splitlines() if row["run_id"] in x]
    assert "promoted NOT MOVED" in line and "(FAILED)" in line
    assert "NOT MOVED: the decision was recorded, but production was not moved" in table


def test_all_adds_the_kept_decision_and_limit_cuts(sequence):
    uri, runs = sequence
    everything = history(uri, "--all")["changes"]
    [kept] = [x for x in everything if x["state"] == "kept"]
    assert (kept["run_id"], kept["from_version"], kept["to_version"], kept["candidate_version"]) == (
        runs["kept"],
        "1",
        "1",
        "2",
    )
    assert [x["action"] for x in everything].index(c.DECISION_KEPT) == 3  # between forced and promoted
    assert [x["run_id"] for x in history(uri, "--limit", "2")["changes"]] == [
        x["run_id"] for x in everything[:2]
    ]


def test_table_reads_and_warns_when_production_was_set_outside(sequence):
    uri, runs = sequence
    table = cli(uri, "history", "--model-name", MODEL)
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["WHEN", "(UTC)", "MODEL", "FROM", "TO"]
    assert "v2 (fine-tuned from 1)" in lines[3] and "forced" in lines[3]
    assert f"workflow run {runs['promoted']}" in lines[4] and "none" in lines[4]
    # last: someone moves the alias in the MLflow UI; history says no recorded move explains it
    mlflow.MlflowClient(uri).set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, "2")
    warned = cli(uri, "history", "--model-name", MODEL)
    assert (
        f"warning: {MODEL}: version 2 holds 'production', but its last recorded move put version 1 there"
        in warned
    )
