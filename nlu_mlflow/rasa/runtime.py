"""Process-wide settings for running Rasa and TensorFlow quietly and offline.

Imported by the package before Rasa and MLflow: telemetry off (no network), TensorFlow's C++ logs down,
matplotlib headless.
"""

import logging
import os
import re
import warnings

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LOG_LEVEL_LIBRARIES", "ERROR")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
# MLflow's usage telemetry fetches its config from the internet in a thread that then removes
# _MLFLOW_TELEMETRY_SESSION_ID from os.environ while requests may be reading it: MLflow 3.5.1 then fails that
# request ("failed with exception '_MLFLOW_TELEMETRY_SESSION_ID'"), seen against a tracking server
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Rasa caches trained components in ./.rasa/cache by default; keep runs reproducible and the folder clean
os.environ.setdefault("RASA_MAX_CACHE_SIZE", "0")


# Whose warnings (deprecations and notes at import and at run time) stay out of the normal output: Rasa,
# TensorFlow and the libraries they bring in. This package's own warnings are never filtered.
LIBRARY_MODULES = (
    "rasa",
    "tensorflow",
    "keras",
    "absl",
    "google.protobuf",
    "tensorflow_hub",
    "tensorflow_addons",
    "sklearn",
    "sanic",
    "apscheduler",
    "pkg_resources",
    "sqlalchemy",
    "matplotlib",
    "mlflow",
)
LIBRARY_WARNINGS = rf"({'|'.join(map(re.escape, LIBRARY_MODULES))})(\.|$)"
QUIET_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning)


def ignore_library_warnings() -> None:
    """Drop the libraries' warnings of the usual noisy kinds (``warnings.filterwarnings(module=...)``)."""
    for category in QUIET_CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=LIBRARY_WARNINGS)


def quiet_rasa(level: int = logging.WARNING) -> None:
    """Keep Rasa's and TensorFlow's INFO/DEBUG chatter out of the workflow's own progress output."""
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(level)
    for name in ("rasa", "tensorflow", "absl", "matplotlib", "sanic", "urllib3", "alembic"):
        logging.getLogger(name).setLevel(level)
    ignore_library_warnings()


CRF_LOGGER = "rasa.nlu.extractors.crf_entity_extractor"
CRF_NOT_STORED = "Failed to load CRFEntityExtractor from model storage."


class EntitylessCRFNote(logging.Filter):
    """Rasa warns "Failed to load CRFEntityExtractor from model storage. Resource '...' doesn't exist." when
    the training data had no entities (its CRF then stores nothing). That is no failure: this filter drops
    the warning and says what it means in one line of ours, once per component."""

    def __init__(self) -> None:
        super().__init__()
        self.told: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if not text.startswith(CRF_NOT_STORED):
            return True
        resource = text.split("'")[1] if text.count("'") >= 2 else "CRFEntityExtractor"
        if resource not in self.told:
            self.told.add(resource)
            logging.getLogger("nlu_mlflow").info(
                "%s: the training data has no entities, so this CRF has nothing to extract (Rasa's "
                '"Failed to load" warning about it is not an error)',
                resource,
            )
        return False


def explain_entityless_crf() -> None:
    """Install ``EntitylessCRFNote`` on Rasa's CRF logger (once)."""
    crf = logging.getLogger(CRF_LOGGER)
    if not any(isinstance(f, EntitylessCRFNote) for f in crf.filters):
        crf.addFilter(EntitylessCRFNote())


def release_memory() -> None:
    """Hand back what the last model held: Keras' global state, Python's garbage and glibc's free heap
    (without ``malloc_trim`` the process keeps its peak size, and the next model grows it further)."""
    import contextlib
    import ctypes
    import gc

    import tensorflow as tf

    tf.keras.backend.clear_session()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def versions() -> dict[str, str]:
    """Versions of the libraries that decide a model's behaviour (MLflow's: ``tracking.runs``)."""
    import rasa
    import tensorflow as tf

    return {"rasa": rasa.__version__, "tensorflow": tf.__version__}
