"""Log set-up for the command-line entry points: progress on stderr, libraries kept quiet."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path


def setup(verbose: bool, log_file: Path | None = None) -> None:
    """``nlu_mlflow`` at INFO (DEBUG with ``verbose``) on stderr, optionally also appended to ``log_file``."""
    if not verbose:  # Rasa, TensorFlow and pkg_resources warn about their own dependencies at import
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("nlu_mlflow").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its DEBUG lines hold URLs with ?token=
    for noisy in ("mlflow", "alembic"):  # store migrations and artifact downloads on every call
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
