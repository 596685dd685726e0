"""nlu-mlflow: continuous training for Rasa NLU assistants, built on MLflow.

Importing the package sets the environment Rasa and TensorFlow read at import time (see rasa.runtime).
"""

from nlu_mlflow.rasa import runtime as _rasa_runtime  # noqa: F401

__version__ = "0.1.0"
