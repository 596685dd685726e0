"""`scripts/bench_inbox.py --quick`: the benchmark runs end to end on small sizes and reports what it read
(the figures themselves are for `make bench-inbox`; no timed asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def test_the_quick_benchmark_reads_every_event_both_ways(tmp_path):
    out = tmp_path / "inbox.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_inbox.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {row["database"] for row in rows} >= {"sqlite"}
    for row in rows:
        assert 0 < row["inbox_items"] <= row["unique_texts"]  # masking may merge texts differing in an e-mail
        assert row["rate_ratio"] > 0 and row["collect_peak_mib"] > 0
    assert rows[-1]["parse"]["texts"] == rows[-1]["inbox_items"]
    assert "rate ratio" in done.stdout and "production parse of" in done.stdout
