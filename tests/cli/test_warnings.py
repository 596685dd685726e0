"""Warning filters hold Rasa's and TensorFlow's (and their libraries') warnings back, never this package's own.

Run in a fresh process (pytest keeps its own warning filters): the CLI's log set-up without --verbose, Rasa's
quiet mode, then one warning attributed to a module of each kind, as ``warnings.warn`` inside it would be.
"""

import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = """
import warnings
from nlu_mlflow.cli import logs
from nlu_mlflow.rasa import runtime

logs.setup(verbose={verbose})
if not {verbose}:
    runtime.ignore_library_warnings()  # what quiet_rasa adds once Rasa is loaded
for module in ("nlu_mlflow.workflow.run", "rasa.core.tracker_store", "tensorflow.python.util", "matplotlib"):
    for category in (UserWarning, DeprecationWarning, FutureWarning):
        text = f"{{category.__name__}} from {{module}}"
        warnings.warn_explicit(text, category, module.replace(".", "/") + ".py", 1, module=module)
"""


def shown(verbose: bool) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(verbose=verbose)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_our_warnings_show_and_the_libraries_do_not():
    output = shown(verbose=False)
    for category in (
        "UserWarning",
        "FutureWarning",
    ):  # Python itself hides DeprecationWarnings outside __main__
        assert f"{category} from nlu_mlflow.workflow.run" in output
    for category in ("UserWarning", "DeprecationWarning", "FutureWarning"):
        for library in ("rasa.core.tracker_store", "tensorflow.python.util", "matplotlib"):
            assert f"{category} from {library}" not in output


def test_verbose_shows_the_libraries_warnings_too():
    output = shown(verbose=True)
    assert "UserWarning from rasa.core.tracker_store" in output
    assert "UserWarning from nlu_mlflow.workflow.run" in output
