"""Candidates as MLflow Project runs: submit the ``candidate`` entry point to MLflow's local or Kubernetes
backend without waiting, watch it, cancel it. MLflow runs the job; this module only hands it over."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.projects
from mlflow.entities import RunStatus

from nlu_mlflow.tracking.errors import translated

TERMINAL = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class Job:
    name: str
    run_id: str
    submitted: object  # mlflow.projects.SubmittedRun


def _with_this_python_on_path() -> None:
    """The local backend starts ``mlflow run`` and then ``python -m nlu_mlflow.cli`` by name: this
    environment's bin folder goes first on PATH so both are this environment's."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [here]:
        os.environ["PATH"] = here + os.pathsep + path


@translated()
def submit(
    name: str,
    run_id: str,
    uri: Path | str,
    parameters: dict[str, str],
    backend: str,
    experiment_id: str,
    backend_config: Path | None = None,
) -> Job:
    """Start entry point ``candidate`` of the project at ``uri`` in run ``run_id`` (created beforehand)."""
    _with_this_python_on_path()
    submitted = mlflow.projects.run(
        uri=str(uri),
        entry_point="candidate",
        parameters=parameters,
        backend=backend,
        backend_config=str(backend_config) if backend_config else None,
        env_manager="local",
        synchronous=False,
        run_id=run_id,
        experiment_id=experiment_id,
        build_image=backend == "kubernetes",
    )
    return Job(name, run_id, submitted)


@translated()
def status(job: Job) -> str:
    """RUNNING, SCHEDULED, FINISHED, FAILED or KILLED."""
    value = job.submitted.get_status()
    return RunStatus.to_string(value) if isinstance(value, int) else str(value)


@translated()
def cancel(job: Job) -> None:
    job.submitted.cancel()
