"""What a normal run prints: progress on stderr and the result table on stdout; the libraries' own noise
(warnings, Rasa's banner, MLflow's registration lines and progress bars) only with -v."""

import os
import subprocess
import sys

import pytest

from tests.helpers import CONFIGS, PIZZA

pytestmark = pytest.mark.slow

NOISE = ("Warning", "Your Rasa model is trained", "Successfully registered model", "Downloading artifacts")


def run_cli(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    cli = os.path.join(os.path.dirname(sys.executable), "nlu-mlflow")
    args = [cli, "run", "--data", PIZZA / "train.yml", "--test-data", PIZZA / "test.yml"]
    args += ["--configs", CONFIGS / "logreg_crf.yml", "--epochs", "1", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [str(a) for a in args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_normal_run_prints_progress_and_the_table_only(tmp_path):
    (tmp_path / "quiet").mkdir()
    quiet = run_cli(tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    for noise in NOISE:
        assert noise not in quiet.stdout + quiet.stderr, noise
    assert all(" INFO " in line for line in quiet.stderr.splitlines()), quiet.stderr
    assert quiet.stdout.splitlines()[0].split()[:2] == ["config", "best"]
    assert quiet.stdout.rstrip().splitlines()[-1].startswith("promoted rasa-nlu version 1")
    (tmp_path / "verbose").mkdir()
    verbose = run_cli(tmp_path / "verbose", "-v")
    assert verbose.returncode == 0, verbose.stderr
    for noise in NOISE:
        assert noise in verbose.stdout + verbose.stderr, noise
