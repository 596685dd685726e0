"""Every MLflow tracking call of the workflow (runs, params, metrics, artifacts, tables, datasets)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide import crossval
from nlu_mlflow.decide.redact import redact, redact_text
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking.errors import checked_uri, translated

MAX_PARAM_LENGTH = 6000
# MLflow retries every request 7 times with growing sleeps (about 4 minutes against a server that is down,
# then as long again for every run it closes): a scheduled job should fail within a minute or two instead.
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def bound_http_retries() -> None:
    """Use HTTP_RETRY_DEFAULTS where the user set nothing (MLflow reads them on every request)."""
    for name, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def use_tracking_uri(uri: str) -> None:
    """Point MLflow at ``uri`` without creating an experiment (commands that only read or register)."""
    mlflow.set_tracking_uri(checked_uri(uri))


@translated()
def open_store(uri: str) -> None:
    """Point MLflow at ``uri`` and open its stores quietly (commands that only read): bounded HTTP retries,
    and a SQLite file that is not there is an error, not a new empty store."""
    bound_http_retries()
    path = uri.removeprefix("sqlite:///")
    if path != uri and not Path(path).is_file():
        raise InputError(f"no MLflow store at {path}: pass --tracking-uri or set MLFLOW_TRACKING_URI.")
    use_tracking_uri(uri)
    _open_stores()


def default_tracking_uri(project_dir: Path) -> str:
    return f"sqlite:///{(project_dir / 'mlruns.db').resolve()}"


@translated()
def configure(tracking_uri: str | None, experiment: str, project_dir: Path | None = None) -> str:
    """Point MLflow at the store and experiment; returns the tracking URI in use.

    Order: ``tracking_uri`` argument, ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db`` in the
    project folder with artifacts in ``mlartifacts/`` beside it. Under ``mlflow run`` (``MLFLOW_RUN_ID``
    set) the run and experiment chosen there win.
    """
    bound_http_retries()
    project_dir = project_dir or Path.cwd()
    default_store = not tracking_uri and not os.environ.get(
        "MLFLOW_TRACKING_URI"
    )  # read before MLflow sets it
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(project_dir)
    uri = checked_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    _open_stores()
    if os.environ.get("MLFLOW_RUN_ID"):  # under `mlflow run`: its run and experiment are ours
        return uri
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if default_store:
            location = (project_dir / c.DEFAULT_ARTIFACT_DIR).resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return uri


def _open_stores() -> None:
    """Open (and migrate) the tracking and registry stores now, keeping our logging set-up.

    MLflow's database migrations run alembic's ``fileConfig``, which replaces the root log handlers
    and logs every step at INFO; the stores are cached per URI, so this happens once per process.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.disable(logging.INFO)
    try:
        client = mlflow.MlflowClient()
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)


def git_commit(directory: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_tags(versions: dict[str, str], project_dir: Path) -> dict[str, str]:
    """Tags naming the library versions (Rasa's and TensorFlow's given, MLflow's added) and the git commit."""
    tags = {
        c.TAG_RASA_VERSION: versions["rasa"],
        c.TAG_TENSORFLOW_VERSION: versions["tensorflow"],
        c.TAG_MLFLOW_VERSION: mlflow.__version__,
    }
    commit = git_commit(project_dir)
    if commit:
        tags[c.TAG_GIT_COMMIT] = commit
    return tags


@contextmanager
def workflow_run(run_name: str, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The parent run: the one ``mlflow run`` started, or a new one. FAILED when the block raises."""
    with (
        translated(),
        mlflow.start_run(run_name=None if os.environ.get("MLFLOW_RUN_ID") else run_name) as run,
    ):
        mlflow.set_tags(redact({**tags, c.TAG_ROLE: c.ROLE_WORKFLOW}))
        yield run


@contextmanager
def candidate_run(name: str, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
    """A child run for one pipeline, named after its config."""
    with translated(), mlflow.start_run(run_name=name, nested=True) as run:
        mlflow.set_tags(redact({**tags, c.TAG_ROLE: c.ROLE_CANDIDATE, c.TAG_CONFIG: name}))
        yield run


@contextmanager
def trial_run(parent_run_id: str, name: str, tags: dict[str, str]) -> Iterator[str]:
    """A run nested under ``parent_run_id`` (a search trial), in the parent's experiment; yields its id.

    Works in the process that holds the parent run (then the active run) and in a worker that does not.
    """
    with translated():
        experiment_id = mlflow.MlflowClient().get_run(parent_run_id).info.experiment_id
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=name, nested=True, parent_run_id=parent_run_id
        ) as run:
            mlflow.set_tags(redact({**tags, c.TAG_ROLE: c.ROLE_TRIAL}))
            yield run.info.run_id


def active_run_id() -> str | None:
    run = mlflow.active_run()
    return run.info.run_id if run else None


def tracking_uri() -> str:
    """The tracking URI in use (it never carries a password: ``configure`` refuses one)."""
    return redact_text(mlflow.get_tracking_uri())


@translated()
def artifact_uri(artifact_path: str) -> str:
    """Where ``artifact_path`` of the active run lives, for a process elsewhere to download."""
    return mlflow.get_artifact_uri(artifact_path)


@translated()
def download_artifact(uri: str, directory: Path) -> Path:
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(directory)))


@translated()
def log_metric_at(name: str, value: float, step: int) -> None:
    mlflow.log_metric(name, float(value), step=step)


@translated()
def log_params(params: dict[str, object]) -> None:
    mlflow.log_params({k: redact_text(str(v))[:MAX_PARAM_LENGTH] for k, v in params.items() if v is not None})


@translated()
def log_metrics(metrics: Mapping[str, float | None], model_id: str | None = None) -> None:
    """Into the active run, leaving out None values; with ``model_id`` also linked to that logged model (its
    Models tab scores)."""
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None}, model_id=model_id)


@translated()
def log_dataset(frame: pd.DataFrame, source: str, name: str, digest: str, context: str) -> None:
    """Log NLU examples as an MLflow dataset input (shown in the run's Datasets panel)."""
    targets = "intent" if "intent" in frame.columns else None
    dataset = mlflow.data.from_pandas(
        frame, source=redact_text(source), name=name, targets=targets, digest=digest
    )
    mlflow.log_input(dataset, context=context)


@translated()
def log_artifacts(directory: Path, artifact_path: str) -> None:
    mlflow.log_artifacts(str(directory), artifact_path)


@translated()
def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path)


@translated()
def log_table(frame: pd.DataFrame, artifact_file: str) -> None:
    mlflow.log_table(data=frame, artifact_file=artifact_file)


@translated()
def log_json(obj: object, artifact_file: str) -> None:
    mlflow.log_dict(redact(json.loads(json.dumps(obj, default=str))), artifact_file)


@translated()
def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(redact(tags))


@translated()
def set_run_tags(run_id: str, tags: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, redact_text(str(value)))


@translated()
def download_folder(run_id: str, folder: str, dst: Path) -> Path | None:
    """An artifact folder of a run, downloaded into ``dst``; None when the run has no file there."""
    if not mlflow.MlflowClient().list_artifacts(run_id, folder):
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=folder, dst_path=str(dst)))


@translated()
def log_artifact_to(run_id: str, path: Path, artifact_path: str | None = None) -> None:
    """Log a file into a run that need not be the active one (e.g. a plot drawn after its run ended)."""
    mlflow.MlflowClient().log_artifact(run_id, str(path), artifact_path)


@translated()
def set_run_name(name: str) -> None:
    """Rename the active run (what the MLflow UI lists)."""
    mlflow.set_tag(c.MLFLOW_RUN_NAME, redact_text(name))


@translated()
def set_description(text: str) -> None:
    mlflow.set_tag(c.MLFLOW_RUN_NOTE, redact_text(text))


@translated()
def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(redact_text(text), artifact_file)


@translated()
def log_metric_steps(name: str, values: list[float]) -> None:
    """One metric with one value per step (value ``i`` at step ``i``), e.g. one per cross-validation fold."""
    for step, value in enumerate(values):
        mlflow.log_metric(name, float(value), step=step)


@translated()
def log_cross_validation(result: crossval.CVResult) -> None:
    """Log a cross-validation into the active run: ``<metric>_mean`` / ``<metric>_std`` for the key
    and per-intent metrics, each fold's value as step ``i`` of ``<metric>_fold``, the per-fold table
    ``cv_folds.json`` and the params ``cv_folds`` / ``cv_seed``."""
    log_params({crossval.PARAM_FOLDS: result.k, crossval.PARAM_SEED: result.seed})
    names = sorted(crossval.logged_metrics(result.per_fold[0]) if result.per_fold else [])
    names = [n for n in names if n + crossval.MEAN_SUFFIX in result.summary]
    suffixes = (crossval.MEAN_SUFFIX, crossval.STD_SUFFIX)
    log_metrics({n + s: result.summary[n + s] for n in names for s in suffixes})
    for name in names:
        log_metric_steps(name + crossval.FOLD_SUFFIX, [fold[name] for fold in result.per_fold])
    log_table(result.table(), crossval.ARTIFACT_CV_FOLDS)


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


@translated()
def create_child_run(parent_run_id: str, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    """A child run of ``parent_run_id`` for work done elsewhere (a submitted candidate); returns its id."""
    run = mlflow.MlflowClient().create_run(
        experiment_id, run_name=name, tags=redact({**tags, "mlflow.parentRunId": parent_run_id})
    )
    return run.info.run_id


@translated()
def run_tags(run_id: str) -> dict[str, str]:
    return dict(mlflow.MlflowClient().get_run(run_id).data.tags)


@translated()
def mark_failed(run_id: str, reason: str) -> None:
    """Tag a run with why it failed and end it FAILED (unless it already ended so)."""
    client = mlflow.MlflowClient()
    client.set_tag(run_id, c.TAG_ERROR, redact_text(reason)[: c.MAX_TAG_LENGTH])
    if client.get_run(run_id).info.status != "FAILED":
        client.set_terminated(run_id, "FAILED")


@translated()
def list_artifacts(run_id: str, path: str) -> list[str]:
    return [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, path)]


@translated()
def load_json(run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run, or None when the run has none there."""
    if path not in list_artifacts(run_id, str(Path(path).parent) if "/" in path else None):
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


@translated()
def load_table(run_id: str, artifact_file: str) -> pd.DataFrame | None:
    """A table ``log_table`` wrote into a run, or None."""
    if artifact_file not in list_artifacts(run_id, None):
        return None
    table = mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}")  # pandas' "split" orientation
    return pd.DataFrame(table["data"], columns=table["columns"])


@translated()
def download_artifacts(run_id: str, path: str, dst: Path) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))
