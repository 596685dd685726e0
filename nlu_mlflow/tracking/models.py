"""Save, log and fetch the pyfunc model of a Rasa archive (``pyfunc_model.RasaNLUModel``).

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

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import inference
from nlu_mlflow.tracking.errors import translated
from nlu_mlflow.tracking.pyfunc_model import SIGNATURE, RasaNLUModel

MODEL_ARTIFACT = "model"  # the logged model's name inside a candidate run
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
    model_uri: str  # runs:/<run_id>/<name>: what register_model, load_model and `models serve` take


@translated()
def log_model(archive: Path, name: str = MODEL_ARTIFACT) -> LoggedModel:
    """Save ``archive`` as a pyfunc model and log it into the active run.

    ``mlflow.pyfunc.log_model`` would load the Rasa model once more to validate the serving input
    (tens of seconds for DIET); the model was just evaluated in this process and the input example is
    still checked against the signature by ``save_model``, so it is saved and logged as artifacts.
    """
    if not Path(archive).is_file():
        raise FileNotFoundError(f"{archive}: no Rasa model archive there; train a model first.")
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-model-") as tmp:
        path = Path(tmp) / name
        mlflow.pyfunc.save_model(
            path,
            python_model=RasaNLUModel(),
            artifacts={c.ARTIFACT_ARCHIVE: str(archive)},
            code_paths=[str(PACKAGE_DIR)],
            signature=SIGNATURE,
            input_example=pd.DataFrame({inference.TEXT_COLUMN: list(INPUT_EXAMPLE)}),
            pip_requirements=pip_requirements(),
        )
        run_id = mlflow.active_run().info.run_id
        _stamp_run(path, run_id, name)
        mlflow.log_artifacts(str(path), name)
    return LoggedModel(f"runs:/{run_id}/{name}")


def _stamp_run(path: Path, run_id: str, name: str) -> None:
    """Record the run and artifact path in MLmodel, as log_model would (tools read the input example
    and model info through them)."""
    model = mlflow.models.Model.load(str(path))
    model.run_id, model.artifact_path = run_id, name
    model.save(str(path / "MLmodel"))


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
