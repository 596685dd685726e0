"""The legacy stage reconciled with the ``production`` alias in one bounded step, on a real registry (SQLite).

The starting states are what concurrent stock promotions leave (several versions in stage Production: 20 of
20 trials, ../shared/notes/ENVIRONMENT.md); tests/tracking/test_registry_race.py races real promoters.
"""

from __future__ import annotations

import warnings

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import registry
from nlu_mlflow.tracking.registry import Reconciled, RegistryError

MODEL = "stage-model"
VERSIONS = 6


@pytest.fixture()
def client(tmp_path):
    """VERSIONS versions of MODEL, each pointing at a run with one tiny text artifact; none in a stage."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("stages", artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model(MODEL)
    for i in range(VERSIONS):
        run_id = client.create_run(experiment).info.run_id
        client.log_text(run_id, f"version {i + 1}", "x/note.txt")
        client.set_terminated(run_id)
        client.create_model_version(MODEL, source=f"runs:/{run_id}/x", run_id=run_id)
    yield client
    mlflow.set_tracking_uri(previous)


def stock_stage(client: MlflowClient, versions: list[str], stage: str = "Production") -> None:
    """Move versions into ``stage`` as a stock promoter does, without archiving the others."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for version in versions:
            client.transition_model_version_stage(MODEL, version, stage)


def stages(client: MlflowClient) -> dict[str, str]:
    return {str(v.version): v.current_stage for v in client.search_model_versions(f"name='{MODEL}'")}


def test_several_in_production_after_a_race_end_as_the_alias_holder_alone(client):
    stock_stage(client, ["1", "2", "4", "5"])
    client.set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, "4")
    assert registry.reconcile_stages(MODEL) == Reconciled("4", archived=("1", "2", "5"), attempts=2)
    assert stages(client) == {
        "1": "Archived", "2": "Archived", "3": "None", "4": "Production", "5": "Archived", "6": "None",
    }  # fmt: skip
    assert registry.reconcile_stages(MODEL) == Reconciled("4")  # one read, nothing touched


def test_a_holder_outside_production_is_moved_in_and_the_others_out(client):
    stock_stage(client, ["1", "2"])
    client.set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, "6")
    assert registry.reconcile_stages(MODEL) == Reconciled(
        "6", promoted=("6",), archived=("1", "2"), attempts=2
    )
    assert registry.versions_in_stage(MODEL, registry.STAGE_PRODUCTION) == ["6"]


def test_without_the_alias_the_stages_are_left_as_they_are(client):
    stock_stage(client, ["2", "3"])
    assert registry.reconcile_stages(MODEL) == Reconciled(None)
    assert registry.versions_in_stage(MODEL, registry.STAGE_PRODUCTION) == ["2", "3"]


def test_move_production_leaves_one_version_in_production_and_both_aliases(client):
    registry.move_production(MODEL, "1")
    stock_stage(client, ["2", "3"])  # a stock promoter raced in between
    previous = registry.move_production(MODEL, "5")
    assert previous.version == "1"
    assert registry.versions_in_stage(MODEL, registry.STAGE_PRODUCTION) == ["5"]
    assert registry.alias_holder(MODEL).version == "5"
    assert registry.alias_holder(MODEL, c.ALIAS_PREVIOUS).version == "1"


def test_a_registry_that_keeps_changing_stops_at_the_bound(client, monkeypatch):
    """Another promoter moves a version into Production after every read: the step gives up after
    RECONCILE_ATTEMPTS reads with one sentence, instead of looping."""
    client.set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, "1")
    read, reads = registry.versions_in_stage, []

    def read_then_race(name: str, stage: str) -> list[str]:
        found = read(name, stage)
        reads.append(found)
        stock_stage(client, [str(2 + len(reads) % (VERSIONS - 1))])  # a real write, after our read
        return found

    monkeypatch.setattr(registry, "versions_in_stage", read_then_race)
    stock_stage(client, ["2"])
    with pytest.raises(RegistryError, match=f"did not settle in {registry.RECONCILE_ATTEMPTS} attempts"):
        registry.reconcile_stages(MODEL)
    assert len(reads) == registry.RECONCILE_ATTEMPTS
