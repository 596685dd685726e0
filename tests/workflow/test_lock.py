"""One workflow at a time through ``filelock`` (workflow/lock.py): a real second process holds the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlu_mlflow.cli import app
from nlu_mlflow.workflow import lock

HOLD = (
    "import sys; from pathlib import Path; from nlu_mlflow.workflow import lock\n"
    "with lock.exclusive(Path(sys.argv[1])):\n"
    "    print('held', flush=True); sys.stdin.readline()\n"
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock until the test lets it go (or kills it)."""
    path = tmp_path / "locks" / "run.lock"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert process.stdout.readline().strip() == "held"
    yield path, process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_a_second_run_is_refused_with_the_holder_named(holder):
    path, process = holder
    expected = rf"another nlu-mlflow run is in progress \(pid {process.pid} since "
    with pytest.raises(lock.LockedError, match=expected), lock.exclusive(path):
        pytest.fail("the block ran while another process held the lock")


def test_the_cli_exits_75_before_doing_anything(holder, tmp_path):
    path, process = holder
    store = tmp_path / "mlruns.db"
    result = CliRunner().invoke(
        app, ["run", "--lock-file", str(path), "--tracking-uri", f"sqlite:///{store}", "--epochs", "1"]
    )
    assert result.exit_code == 75, result.output
    assert f"pid {process.pid}" in result.output and "try again when it has finished" in result.output
    assert not store.exists()  # no run, nothing registered


def test_a_killed_holder_leaves_no_stale_lock(holder):
    path, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    with lock.exclusive(path):
        assert path.read_text().startswith(f"pid {os.getpid()} since ")


def test_a_finished_run_frees_the_lock_and_leaves_no_name(tmp_path):
    path = tmp_path / "run.lock"
    with lock.exclusive(path):
        assert path.read_text().startswith(f"pid {os.getpid()} since ")
    assert path.read_text() == ""
    with lock.exclusive(path):  # free again
        pass
