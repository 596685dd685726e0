"""Every scripts/bench*.py runs in its quick mode (data/pizza, 1 epoch, one repetition), so a moved helper or a
renamed option breaks the suite rather than the next person's `make bench`. The numbers mean nothing here: the
test asserts that the script exits 0 and prints its ratio line, and that it leaves nothing in the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("bench*.py"))
ANY_RATIO = r"\d+\.\d+x"  # a script added later: some ratio, e.g. "0.78x"
RATIO_LINES = {  # the line a person reads the result from, as each script prints it
    "bench.py": r"workflow/loop wall\s+\d+\.\d+x",
    "bench_diet_speed.py": r"intra1\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+x",
    "bench_finetune.py": r"fine-tuned / scratch\s+\d+\.\d+x",
    "bench_inbox.py": r"sqlite: rate ratio \d+\.\d+ at worst",
    "bench_replay.py": r"both models: replay .* -> \d+\.\d+x",
    "bench_scale.py": r"local/inline wall time: \d+\.\d+x",
    "bench_search.py": r"ratios pruning / full budget .*epochs trained \d+\.\d+",
    "bench_serving.py": r"utterances: rasa run .* -> \d+\.\d+x",
}


def test_the_ratio_lines_name_existing_scripts():
    assert SCRIPTS, "no scripts/bench*.py found: the glob is wrong"
    assert set(RATIO_LINES) <= set(SCRIPTS), "a ratio line for a script that is gone"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_in_quick_mode(script, tmp_path):
    before = _outputs()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--quick", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a quick run takes 1-4 minutes alone; the suite's other servers share the 2 cores
    )
    assert done.returncode == 0, f"{script} --quick exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert re.search(RATIO_LINES.get(script, ANY_RATIO), done.stdout), (
        f"{script} printed no ratio line:\n{done.stdout}"
    )
    assert out.is_file()
    assert _outputs() == before, f"{script} left files in the repository"


def _outputs() -> set[str]:
    """What a benchmark could leave in the repository: top-level files (stores, mlruns/) and bench-results/.
    Dot files are left out: another test running beside this one (`make test` has two workers) may hold a
    lock file there for the moment, such as `mlflow run .`'s .nlu-mlflow.lock."""
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    return top | {p.name for p in ROOT.glob("bench-results/*")}
