"""Where candidates train: ``inline`` (this process, one after another: the default), ``local`` (each one an
MLflow Project run in a subprocess, N at a time) or ``kubernetes`` (each one a Job through MLflow's Kubernetes
backend, N at a time, with the files in deploy/kubernetes/).

A submitted candidate runs the MLproject entry point ``candidate`` (``nlu-mlflow candidate``): it reads the
parent run's ``inputs/`` artifacts (``handoff``), trains and scores exactly as an inline candidate does, and
leaves ``candidate.json`` and its scores in its own run, where ``collect`` reads them. A job that fails or
runs past its timeout is a failed candidate, not a failed workflow.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import fast_load, pipelines, plots, runtime
from nlu_mlflow.tracking import projects, runs, score_cache
from nlu_mlflow.workflow import handoff
from nlu_mlflow.workflow.candidates import (
    CANDIDATE_RECORD,
    Candidate,
    CandidateFailed,
    FailedCandidate,
    run_candidate,
)

logger = logging.getLogger("nlu_mlflow")

POLL_S = 2.0
PACKAGED_MLPROJECTS = Path(__file__).parent / "mlprojects"  # package data: one folder per backend


@dataclass(frozen=True)
class Submission:
    """How the parent hands candidates over: backend, how many at once, per-candidate timeout."""

    backend: str
    parallel: int
    timeout_s: float
    project_uri: Path  # the MLproject with the `candidate` entry point
    backend_config: Path | None = None  # kubernetes_config.json


def run_submitted(
    configs: list[pipelines.PipelineConfig], submission: Submission, parent_run_id: str, env_tags: dict
) -> tuple[list[Candidate], list[FailedCandidate]]:
    """Submit every config, ``parallel`` at a time, wait for each (at most ``timeout_s``), collect them."""
    experiment_id = runs.active_experiment_id()
    pending, running, ended = list(configs), {}, []
    while pending or running:
        while pending and len(running) < submission.parallel:
            config = pending.pop(0)
            running[config.name] = (
                _submit(config, submission, parent_run_id, experiment_id, env_tags),
                time.monotonic(),
            )
        time.sleep(POLL_S)
        for name, (job, started) in list(running.items()):
            state = projects.status(job)
            if state in projects.TERMINAL:
                ended.append(
                    (job, None if state == "FINISHED" else f"the {submission.backend} job ended {state}")
                )
            elif time.monotonic() - started > submission.timeout_s:
                projects.cancel(job)
                ended.append((job, f"timed out after {submission.timeout_s:.0f} s; the job was cancelled"))
            else:
                continue
            del running[name]
            logger.info("  %s: %s", name, ended[-1][1] or "finished")
    order = {x.name: i for i, x in enumerate(configs)}
    return collect(sorted(ended, key=lambda e: order[e[0].name]))


def _submit(config, submission: Submission, parent_run_id: str, experiment_id: str, env_tags: dict):
    tags = {**env_tags, c.TAG_ROLE: c.ROLE_CANDIDATE, c.TAG_CONFIG: config.name}
    run_id = runs.create_child_run(parent_run_id, experiment_id, config.name, tags)
    logger.info("  %s: submitted to the %s backend (run %s)", config.name, submission.backend, run_id)
    return projects.submit(
        config.name,
        run_id,
        mlproject_folder(submission.project_uri, submission.backend),
        {"parent_run_id": parent_run_id, "config": config.name},
        submission.backend,
        experiment_id,
        submission.backend_config,
    )


def mlproject_folder(folder: Path, backend: str) -> Path:
    """``folder`` when it holds an MLproject (a checkout of the repository), else the copy with the
    ``candidate`` entry point installed with the package (``nlu-mlflow`` installed from a wheel)."""
    return folder if (Path(folder) / "MLproject").is_file() else PACKAGED_MLPROJECTS / backend


def collect(ended: list) -> tuple[list[Candidate], list[FailedCandidate]]:
    """Each ended job as a candidate (from the records it logged) or a failed one (with the reason)."""
    candidates, failed = [], []
    for job, problem in ended:
        record = runs.load_json(job.run_id, CANDIDATE_RECORD) if problem is None else None
        if record is None:
            reason = runs.run_tags(job.run_id).get(c.TAG_ERROR) or problem or "the job left no candidate.json"
            runs.mark_failed(job.run_id, reason)
            failed.append(FailedCandidate(job.name, job.run_id, reason))
            continue
        scores = runs.load_json(job.run_id, _scores_file(job.run_id))
        assert scores is not None, f"{job.name}: the finished job logged no scores"
        candidates.append(
            Candidate.from_records(record, scores, runs.load_table(job.run_id, c.ARTIFACT_CRITICAL_TABLE))
        )
    return candidates, failed


def _scores_file(run_id: str) -> str:
    [path] = runs.list_artifacts(run_id, score_cache.SCORES_ARTIFACT_DIR)
    return path


def run_one(parent_run_id: str, name: str) -> Candidate:
    """The ``candidate`` entry point: train and score config ``name`` of the parent run's inputs in the run
    MLflow started for it (``MLFLOW_RUN_ID``). Raises ``CandidateFailed`` when the candidate failed."""
    runtime.quiet_rasa()
    runs.bound_http_retries()
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-candidate-") as tmp:
        folder = runs.download_artifacts(parent_run_id, handoff.ARTIFACT_DIR, Path(tmp))
        shared = handoff.read(folder, Path(tmp) / "work", [name])
        if not shared.inputs.configs:
            raise CandidateFailed(FailedCandidate(name, None, f"the parent run has no config named {name!r}"))
        [config] = shared.inputs.configs
        with fast_load.enabled(), plots.PlotHelper(runs.log_artifact_to, runs.set_run_tags) as helper:
            return run_candidate(config, shared, Path(tmp) / name, helper)
