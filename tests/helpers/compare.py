"""Compare two nested results (Rasa's evaluation records, report dicts) within float tolerances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _rasa(*args: str, workdir: Path) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        cwd=workdir,
        timeout=600,
    )


def rasa_test_nlu_out(archive: Path, test_data: Path, workdir: Path) -> Path:
    """Run ``rasa test nlu`` on ``archive``; returns the folder with every report it wrote."""
    out = workdir / "rasa-test"
    _rasa("test", "nlu", "-m", str(archive), "--nlu", str(test_data), "--out", str(out), workdir=workdir)
    return out


def rasa_test_nlu(archive: Path, test_data: Path, workdir: Path) -> tuple[dict, dict]:
    """Run ``rasa test nlu`` on ``archive`` and return its intent report and DIET's entity report."""
    out = rasa_test_nlu_out(archive, test_data, workdir)
    intent_report = json.loads((out / "intent_report.json").read_text())
    entity_report = json.loads((out / "DIETClassifier_report.json").read_text())
    return intent_report, entity_report


def rasa_test_core(archive: Path, stories: Path, workdir: Path) -> Path:
    """Run ``rasa test core`` on ``archive`` with the test conversations in ``stories``; returns its folder."""
    out = workdir / "rasa-test-core"
    _rasa("test", "core", "-m", str(archive), "--stories", str(stories), "--out", str(out), workdir=workdir)
    return out


def differences(
    expected,
    actual,
    tolerance: float = 1e-6,
    key_tolerances: Mapping[str, float] | None = None,
    path: str = "",
) -> list[str]:
    """Where two results differ (eval data, report dicts, nested lists), floats within ``tolerance``.

    Lists, tuples (Rasa's result records) and dicts are compared item by item; every other value
    with ``==``. ``key_tolerances`` gives other tolerances below named dict keys. Each difference
    is one line naming its path, e.g. ``[0][3].confidence: 0.91 != 0.93``.
    """
    key_tolerances = key_tolerances or {}
    if isinstance(expected, float | np.floating) and isinstance(actual, float | np.floating):
        same = abs(float(expected) - float(actual)) <= tolerance
        return [] if same else [f"{path}: {expected!r} != {actual!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(map(str, expected))} != {sorted(map(str, actual))}"]
        return [
            d
            for k in expected
            for d in differences(
                expected[k], actual[k], key_tolerances.get(k, tolerance), key_tolerances, f"{path}.{k}"
            )
        ]
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return _sequence_differences(expected, actual, tolerance, key_tolerances, path)
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def _sequence_differences(expected, actual, tolerance: float, key_tolerances, path: str) -> list[str]:
    if len(expected) != len(actual) or type(expected) is not type(actual):
        kinds = (f"{type(x).__name__} of {len(x)}" for x in (expected, actual))
        return [f"{path}: " + " != ".join(kinds)]
    fields = getattr(expected, "_fields", None)  # a namedtuple names its items
    paths = [f"{path}.{f}" for f in fields] if fields else [f"{path}[{i}]" for i in range(len(expected))]
    pairs = zip(paths, expected, actual, strict=True)
    return [d for p, e, a in pairs for d in differences(e, a, tolerance, key_tolerances, p)]
