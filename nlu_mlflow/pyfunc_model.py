"""A candidate's Rasa model as an MLflow pyfunc: the archive travels as an artifact, Rasa loads it.

Input: a DataFrame with a ``text`` column, or a list of strings. Output: one row per text with
``intent``, ``confidence``, ``entities`` (JSON) and ``intent_ranking`` (JSON); see ``inference``.
The ``nlu_mlflow`` package travels with the model (``code_paths``), so ``mlflow.pyfunc.load_model``
and ``mlflow models serve --env-manager local`` work in any process of the project's environment.
"""

from __future__ import annotations

import logging
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

import mlflow
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, Schema

# importing the package runs rasa_runtime (telemetry off, TF_CPP_MIN_LOG_LEVEL=2) before Rasa loads
from nlu_mlflow import constants as c
from nlu_mlflow import inference

MODEL_ARTIFACT = "model"  # the logged model's name inside a candidate run
PINNED_PACKAGES = ("rasa", "mlflow", "tensorflow", "uvicorn")  # what decides loading and serving
INPUT_EXAMPLE = ("hi there", "i want a large pepperoni pizza for tomorrow")
PACKAGE_DIR = Path(__file__).resolve().parent

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", inference.TEXT_COLUMN)]),
    outputs=Schema(
        [
            ColSpec("string", "intent"),
            ColSpec("double", "confidence"),
            ColSpec("string", "entities"),
            ColSpec("string", "intent_ranking"),
        ]
    ),
)


class RasaNLUModel(mlflow.pyfunc.PythonModel):
    """Loads the Rasa archive in ``context.artifacts["rasa_model"]`` and parses batches of texts."""

    def load_context(self, context) -> None:
        from rasa.utils.log_utils import configure_structlog

        from nlu_mlflow import fast_load

        configure_structlog(logging.WARNING)  # no per-message debug lines from the processor
        archive = Path(context.artifacts[c.ARTIFACT_ARCHIVE])
        check_archive(archive)
        self.processor = fast_load.load_processor(archive)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """``model_input``: a DataFrame with a ``text`` column, or a list of strings."""
        texts = input_texts(model_input)
        return inference.to_frame(inference.parse_texts(self.processor, texts))


def input_texts(model_input) -> list[str]:
    """The texts of a DataFrame's ``text`` column or of a list of strings, in order."""
    if isinstance(model_input, pd.DataFrame):
        if inference.TEXT_COLUMN not in model_input.columns:
            raise ValueError(
                f"model input has columns {list(model_input.columns)}: "
                f"send a '{inference.TEXT_COLUMN}' column with one utterance per row."
            )
        texts = model_input[inference.TEXT_COLUMN].tolist()
    elif isinstance(model_input, pd.Series | list | tuple):
        texts = list(model_input)
    else:
        raise ValueError(
            f"model input is a {type(model_input).__name__}: send a DataFrame with a "
            f"'{inference.TEXT_COLUMN}' column or a list of strings."
        )
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ValueError(
            f"model input rows {bad[:10]} are not strings: send one utterance (a string) per row."
        )
    return texts


def check_archive(archive: Path) -> None:
    """Refuse an archive whose members could land outside the folder Rasa extracts it to, or that
    holds anything but plain files and folders (links, devices, fifos), or that is not a tar.gz.

    Rasa's extraction (tarsafe) checks member paths against the current directory, not the target.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(
            f"{archive}: not a readable .tar.gz ({type(exc).__name__}); re-log the model."
        ) from None
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise ValueError(
                f"{archive}: member '{member.name}' is a link or device or leaves the archive's folder; "
                "this is not a model archive Rasa wrote, retrain or re-log the model."
            )


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


def archive_path(model_uri: str, dst_path: Path | None = None) -> Path:
    """Download a logged or registered model and return its Rasa archive (e.g. to re-evaluate it)."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path))
    artifacts = mlflow.models.Model.load(str(local)).flavors["python_function"].get("artifacts", {})
    if c.ARTIFACT_ARCHIVE not in artifacts:
        raise ValueError(f"{model_uri}: not a Rasa NLU pyfunc model (no '{c.ARTIFACT_ARCHIVE}' artifact).")
    return local / artifacts[c.ARTIFACT_ARCHIVE]["path"]
