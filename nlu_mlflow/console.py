"""What libraries print on their own (Rasa's green "model is trained" banner, MLflow's "Successfully
registered model" lines, progress bars): kept out of a normal run's output, shown with ``-v``.

Our own progress goes through logging, whose handler holds the real stderr; ``library_output`` only swaps
``sys.stdout``/``sys.stderr`` for what the wrapped library call prints. Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

LOGGER = "nlu_mlflow"


@contextlib.contextmanager
def library_output() -> Iterator[None]:
    """Within the block, what libraries print is dropped, unless ``nlu_mlflow`` logs at DEBUG (``-v``)."""
    if logging.getLogger(LOGGER).isEnabledFor(logging.DEBUG):
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
