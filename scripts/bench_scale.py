"""Benchmark: candidates inline (one after another in the workflow's process) vs `--backend local
--parallel N` (an MLflow Project run per candidate in a subprocess, N at a time), on the same data and the
configs in configs/, each workflow in a throw-away store, both in one invocation.

    python scripts/bench_scale.py --data ../shared/datasets/rasa-demo-flat/train.yml \
        --test-data ../shared/datasets/rasa-demo-flat/test.yml --epochs 10 --parallel 2

Prints each workflow's wall time (the whole `nlu-mlflow run`: inputs, candidates, decision), the ratio
local/inline, and whether both gave the same candidates, metrics and decision. Nothing is asserted: the
numbers are for people; the equality is tested in tests/workflow/test_backends.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
VARYING = ("train_seconds", "eval_seconds", "model_size_mb")


def workflow(args, home: Path, *backend: str) -> tuple[float, dict, int]:
    summary = home / "summary.json"
    command = [
        str(BIN / "nlu-mlflow"), "run", "--data", args.data, "--test-data", args.test_data,
        "--configs", args.configs, "--epochs", str(args.epochs),
        "--tracking-uri", f"sqlite:///{home / 'mlruns.db'}", "--lock-file", str(home / "lock"),
        "--summary-json", str(summary), "--allow-conflicts", *backend,
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 4):
        sys.exit(f"{' '.join(backend) or 'inline'} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, json.loads(summary.read_text()), done.returncode


def candidate_metrics(home: Path) -> dict[str, dict[str, float]]:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlruns.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    children = client.search_runs(experiments, "tags.`nlu_mlflow.role` = 'candidate'")
    return {
        r.info.run_name: {k: round(v, 6) for k, v in r.data.metrics.items() if k not in VARYING}
        for r in children
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared/datasets/rasa-demo-flat/train.yml"))
    parser.add_argument("--test-data", default=str(ROOT.parent / "shared/datasets/rasa-demo-flat/test.yml"))
    parser.add_argument("--configs", default=str(ROOT / "configs"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "bench_scale.json"))
    parser.add_argument("--quick", action="store_true", help="smoke run: data/pizza, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        pizza = ROOT / "data" / "pizza"
        args.data, args.test_data, args.epochs = str(pizza / "train.yml"), str(pizza / "test.yml"), 1
        args.configs = str(ROOT / "configs" / "logreg_crf.yml")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        inline_home, local_home = Path(tmp) / "inline", Path(tmp) / "local"
        inline_home.mkdir()
        local_home.mkdir()
        inline_wall, inline_summary, _ = workflow(args, inline_home)
        local_wall, local_summary, _ = workflow(
            args, local_home, "--backend", "local", "--parallel", str(args.parallel)
        )
        same_metrics = candidate_metrics(inline_home) == candidate_metrics(local_home)
    same_decision = (inline_summary["decision"], (inline_summary["candidate"] or {}).get("config")) == (
        local_summary["decision"],
        (local_summary["candidate"] or {}).get("config"),
    )
    result = {
        "data": args.data,
        "epochs": args.epochs,
        "parallel": args.parallel,
        "inline_wall_s": round(inline_wall, 1),
        "local_wall_s": round(local_wall, 1),
        "local_over_inline": round(local_wall / inline_wall, 3),
        "same_metrics": same_metrics,
        "same_decision": same_decision,
    }
    print(f"inline (one process, one candidate after another): {inline_wall:7.1f} s")
    print(f"local --parallel {args.parallel} (a subprocess per candidate):  {local_wall:7.1f} s")
    print(f"local/inline wall time: {local_wall / inline_wall:.2f}x ({os.cpu_count()} cores here)")
    print(f"same candidates and metrics: {same_metrics}; same decision: {same_decision}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
