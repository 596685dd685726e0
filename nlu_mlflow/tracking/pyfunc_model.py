"""A candidate's Rasa model as an MLflow pyfunc: the archive travels as an artifact, Rasa loads it.

Input: a DataFrame with a ``text`` column, or a list of strings. Output: one row per text with
``intent``, ``confidence``, ``entities`` (JSON) and ``intent_ranking`` (JSON); see ``rasa.inference``.
Saving, logging and downloading such a model is ``tracking.models``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, Schema

# importing the package runs rasa.runtime (telemetry off, TF_CPP_MIN_LOG_LEVEL=2) before Rasa loads
from nlu_mlflow import constants as c
from nlu_mlflow.rasa import inference

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
        from nlu_mlflow.rasa import fast_load, runtime

        runtime.quiet_rasa()  # no per-message debug lines from the processor
        archive = Path(context.artifacts[c.ARTIFACT_ARCHIVE])
        self.processor = fast_load.load_processor(archive)  # checks the archive first

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002
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
