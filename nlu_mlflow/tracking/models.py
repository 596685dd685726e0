"""Save, log and fetch the pyfunc model of a Rasa archive (``pyfunc_model.RasaNLUModel``).

Each candidate is an MLflow 3 logged model: it has an id (``m-...``), lives in the experiment's Models tab
with the metrics linked to it (``runs.log_metrics(..., model_id=...)``), is the output of its candidate run
(the run's "Models" column) and is what a registered version points at (``models:/<model_id>``).
``runs:/<run_id>/model`` still resolves to it (MLflow looks the logged model up by name and run).

The ``nlu_mlflow`` package travels with the model (``code_paths``), so ``mlflow.pyfunc.load_model``
and ``mlflow models serve --env-manager local`` work in any process of the project's environment.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelOutput, LoggedModelStatus

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import inference
from nlu_mlflow.tracking.errors import translated
from nlu_mlflow.tracking.pyfunc_model import SIGNATURE, RasaNLUModel

MODEL_ARTIFACT = "model"  # the logged model's name: runs:/<run_id>/model resolves to it
PINNED_PACKAGES = ("rasa", "mlflow", "tensorflow", "uvicorn")  # what decides loading and serving
INPUT_EXAMPLE = ("hi there", "i want a large pepperoni pizza for tomorrow")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the nlu_mlflow package


def pip_requirements() -> list[str]:
    """Exact versions of the packages the model needs, as installed here from requirements/lock.txt."""
    pins = []
    for name in PINNED_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


@dataclass(frozen=True)
class LoggedModel:
    model_id: str  # MLflow 3's logged model id (m-...)
    run_id: str  # the candidate run that logged it
    name: str = MODEL_ARTIFACT

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``: what register_model, load_model and `models serve` take."""
        return f"models:/{self.model_id}"

    @property
    def run_uri(self) -> str:
        """``runs:/<run_id>/<name>``: the same model, by its run."""
        return f"runs:/{self.run_id}/{self.name}"


@translated()
def log_model(archive: Path, name: str = MODEL_ARTIFACT, tags: dict[str, str] | None = None) -> LoggedModel:
    """Save ``archive`` as a pyfunc model and log it as an MLflow 3 logged model of the active run.

    ``mlflow.pyfunc.log_model`` would load the Rasa model once more to validate the input example
    (tens of seconds for DIET); the model was just evaluated in this process, the signature is given and
    ``save_model`` checks the input example against it, so the steps of ``log_model`` are taken here
    without that load: create the logged model (with the run's params), upload, link it as the run's
    output, mark it READY (FAILED when the upload fails).
    """
    if not Path(archive).is_file():
        raise FileNotFoundError(f"{archive}: no Rasa model archive there; train a model first.")
    client, run = mlflow.MlflowClient(), mlflow.active_run()
    params = client.get_run(run.info.run_id).data.params
    model = mlflow.initialize_logged_model(
        name=name, source_run_id=run.info.run_id, tags=tags, params=params,
        experiment_id=run.info.experiment_id,
    )  # fmt: skip
    try:
        _save_and_upload(client, archive, model, run.info.run_id)
    except BaseException:
        mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
    mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return LoggedModel(model.model_id, run.info.run_id, name)


def _save_and_upload(client: mlflow.MlflowClient, archive: Path, model, run_id: str) -> None:
    """The pyfunc folder, its MLmodel naming the logged model and its run, uploaded as the model's files."""
    mlmodel = mlflow.models.Model(
        artifact_path=model.artifact_location, run_id=run_id, model_id=model.model_id,
        model_uuid=model.model_id,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-model-") as tmp:
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            path,
            python_model=RasaNLUModel(),
            artifacts={c.ARTIFACT_ARCHIVE: str(archive)},
            code_paths=[str(PACKAGE_DIR)],
            signature=SIGNATURE,
            input_example=pd.DataFrame({inference.TEXT_COLUMN: list(INPUT_EXAMPLE)}),
            pip_requirements=pip_requirements(),
            mlflow_model=mlmodel,
        )
        client.log_model_artifacts(model.model_id, str(path))


@translated()
def archive_path(model_uri: str, dst_path: Path | None = None) -> Path:
    """Download a logged or registered model and return its Rasa archive (e.g. to re-evaluate it)."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path))
    artifacts = mlflow.models.Model.load(str(local)).flavors["python_function"].get("artifacts", {})
    if c.ARTIFACT_ARCHIVE not in artifacts:
        raise ValueError(f"{model_uri}: not a Rasa NLU pyfunc model (no '{c.ARTIFACT_ARCHIVE}' artifact).")
    archive = (local / artifacts[c.ARTIFACT_ARCHIVE]["path"]).resolve()
    if not archive.is_relative_to(local.resolve()):
        raise ValueError(
            f"{model_uri}: MLmodel's '{c.ARTIFACT_ARCHIVE}' path leaves the model folder; re-log the model."
        )
    return archive
