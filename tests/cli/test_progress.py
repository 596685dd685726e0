"""The training's progress as a user sees it from `nlu-mlflow run` (rasa/progress.py via the training hook):
one line rewritten in place on a terminal (a pseudo-terminal here), a log line every 10% of the epochs in a log
file; and the candidate's run carries the per-epoch loss as a curve (tracking/curves.py)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import mlflow
import pytest

from tests.helpers import CONFIGS, PIZZA

pytestmark = pytest.mark.slow

EPOCHS = 10
LINE = re.compile(
    rf"diet: DIETClassifier epoch (\d+)/{EPOCHS}  t_loss [\d.]+  i_acc [\d.]+(  \w+ [\d.]+)*  (ETA \d+:\d\d|done)"
)


def command(tmp_path) -> list[str]:
    cli = os.path.join(os.path.dirname(sys.executable), "nlu-mlflow")
    args = [cli, "run", "--data", PIZZA / "train.yml", "--test-data", PIZZA / "test.yml"]
    args += ["--configs", CONFIGS / "diet.yml", "--epochs", EPOCHS, "--no-register"]
    args += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}", "--lock-file", tmp_path / "run.lock"]
    return [str(a) for a in args]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def test_on_a_terminal_the_progress_is_one_line_rewritten_in_place(tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        command(tmp_path), cwd=tmp_path, env=environment(), stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = _read_all(leader)
    assert proc.wait(timeout=60) == 0, seen
    updates = [m.group(1) for m in LINE.finditer(seen)]
    assert updates == [str(n) for n in range(1, EPOCHS + 1)], seen
    assert seen.count("\r") >= EPOCHS and "\rdiet: DIETClassifier epoch 1/" in seen
    assert re.search(rf"epoch {EPOCHS}/{EPOCHS} .*done *\r?\n", seen), "a newline ends the line"


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def test_in_a_log_file_a_line_every_tenth_and_the_run_has_the_loss_curve(tmp_path):
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.run(
            command(tmp_path), cwd=tmp_path, env=environment(), stdout=out, stderr=out, timeout=900
        )
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    lines = [line for line in text.splitlines() if LINE.search(line)]
    assert [LINE.search(line).group(1) for line in lines] == [str(n) for n in range(1, EPOCHS + 1)]
    assert all(" INFO " in line for line in lines)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (candidate,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.mlflow.parentRunId != ''"
    )
    curve = client.get_metric_history(candidate.info.run_id, "curve/DIETClassifier/t_loss")
    assert [m.step for m in curve] == list(range(1, EPOCHS + 1))
    assert curve[-1].value < curve[0].value
