"""The plot helper process (see ``plots``): runs Rasa's drawing functions for the workflow.

Reads one line per job from stdin, the path of a pickled ``(function name, args, kwargs)`` for
``rasa.utils.plotting``; answers one line per job on stdout: ``ok`` or ``error <why>``. Exits at the
end of stdin. Imports only Rasa's plotting module and matplotlib (no TensorFlow).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

DRAWING_FUNCTIONS = ("plot_confusion_matrix", "plot_paired_histogram")


def run_job(job_file: Path) -> str:
    import rasa.utils.plotting as plotting

    try:
        name, args, kwargs = pickle.loads(job_file.read_bytes())
        if name not in DRAWING_FUNCTIONS:
            raise ValueError(f"not a drawing function: {name!r}")
        getattr(plotting, name)(*args, **kwargs)
    except Exception as error:  # reported to the parent, which warns and tags the run
        return f"error {type(error).__name__}: {' '.join(str(error).split())}"
    finally:
        job_file.unlink(missing_ok=True)
    return "ok"


def main() -> None:
    import rasa.utils.plotting  # noqa: F401  (imported before the first job arrives)

    replies, sys.stdout = sys.stdout, sys.stderr  # whatever the drawing prints stays off the reply channel
    for line in sys.stdin:
        print(run_job(Path(line.strip())), file=replies, flush=True)


if __name__ == "__main__":
    main()
