"""Which Rasa versions the private-function patches were verified against.

Fast loading (``fast_load``), batched evaluation (``batched``) and the plot helper (``plots``) replace or
call Rasa internals (``RasaModel.load``, ``CRFEntityExtractor.train_model``, the NLU evaluation helpers,
``rasa.utils.plotting``). On any other installed Rasa they stand aside and Rasa's own path runs; this is
logged once per process.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata

VERIFIED_RASA = ("3.6.21",)

logger = logging.getLogger("nlu_mlflow")
_lock = threading.Lock()
_warned = False


def installed_rasa() -> str | None:
    try:
        return metadata.version("rasa")
    except metadata.PackageNotFoundError:
        return None


def verified() -> bool:
    """True when the installed Rasa is one the patches were verified against (else logs once why not)."""
    global _warned
    version = installed_rasa()
    if version in VERIFIED_RASA:
        return True
    with _lock:
        if not _warned:
            _warned = True
            logger.warning(
                "Rasa %s is installed; fast loading, batched evaluation and the plot helper were verified "
                "against Rasa %s only: using Rasa's own (slower) paths.",
                version,
                ", ".join(VERIFIED_RASA),
            )
    return False
