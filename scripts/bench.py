"""Benchmark: the seed-style loop vs `nlu-mlflow run` vs in-process training alone (the floor).

    python scripts/bench.py --data ../shared/datasets/rasa-demo-flat --epochs 5 --out bench-results/bench.json

Runs, on the same configs and data, in one invocation:
  loop      for each config `rasa train nlu` + `rasa test nlu` (separate processes), plus `rasa test nlu`
            of the production model (the seed script's comparison)
  workflow  `nlu-mlflow run` against a store where a production model is already registered
  floor     in-process Rasa training of the same configs, nothing else
and prints wall time, CPU time and peak memory of each, with the ratios workflow/loop and workflow/floor.
Each command runs under a small wrapper process so its peak memory is measured on its own: the larger of
its largest process's ru_maxrss and the summed RSS of its whole process tree (sampled every 0.2 s).
Nothing here is asserted: the numbers are for people.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WRAPPER = """
import json, resource, subprocess, sys, threading, time
import psutil
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
tree_peak, done = 0, threading.Event()
def sample():  # the whole tree at once: the workflow's plot helper runs beside it
    global tree_peak
    while not done.wait(0.2):
        try:
            procs = [psutil.Process(child.pid)]
            procs += procs[0].children(recursive=True)
            tree_peak = max(tree_peak, sum(p.memory_info().rss for p in procs))
        except psutil.Error:
            pass
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
code = child.wait()
done.set()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": max(usage.ru_maxrss * 1024, tree_peak) / 2**20, "code": code}))
"""
FLOOR = """
import sys
from pathlib import Path
from nlu_mlflow.rasa import pipelines, runtime, training
runtime.quiet_rasa()
train_yaml, work, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
for config in pipelines.load_all(Path(sys.argv[4]), epochs, 42):
    training.train(config, train_yaml, work / config.name)
"""


def measure(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(out.stdout)
    if result["code"] != 0:
        raise SystemExit(f"benchmark command failed ({result['code']}): {' '.join(cmd)}")
    return result


def total(parts: list[dict]) -> dict:
    return {
        "wall": sum(p["wall"] for p in parts),
        "cpu": sum(p["cpu"] for p in parts),
        "peak_mb": max(p["peak_mb"] for p in parts),
    }


def capped_configs(configs: Path, epochs: int, dest: Path) -> list[Path]:
    from nlu_mlflow.rasa import pipelines
    from nlu_mlflow.rasa import runtime as rasa_runtime

    rasa_runtime.quiet_rasa()  # Rasa's import resets the warning filters
    dest.mkdir(parents=True, exist_ok=True)
    return [c.write(dest / f"{c.name}.yml") for c in pipelines.load_all(configs, epochs, 42)]


def seed_loop(configs: list[Path], train: Path, test: Path, production: Path, work: Path, env: dict) -> dict:
    rasa = str(BIN / "rasa")

    def test_nlu(model: Path, out: Path) -> dict:
        return measure([rasa, "test", "nlu", "-m", str(model), "--nlu", str(test), "--out", str(out)], env)

    trains, tests = [], []
    for config in configs:
        out = work / "loop" / config.stem
        train_cmd = [rasa, "train", "nlu", "-c", str(config), "--nlu", str(train), "--out", str(out)]
        trains.append(measure([*train_cmd, "--fixed-model-name", config.stem], env))
        tests.append(test_nlu(out / f"{config.stem}.tar.gz", out / "results"))
    tests.append(test_nlu(production, work / "loop" / "production"))
    return {**total(trains + tests), "largest_train_peak_mb": max(t["peak_mb"] for t in trains)}


def workflow(configs: Path, train: Path, test: Path, epochs: int, store: str, env: dict) -> dict:
    """Times one `nlu-mlflow run`; adds the training seconds its candidate runs logged."""
    summary = Path(store.removeprefix("sqlite:///")).with_suffix(".summary.json")
    cmd = [
        str(BIN / "nlu-mlflow"),
        "run",
        "--data",
        str(train),
        "--test-data",
        str(test),
        "--configs",
        str(configs),
        "--epochs",
        str(epochs),
        "--tracking-uri",
        store,
        "--model-name",
        "bench-nlu",
        "--allow-conflicts",
        "--lock-file",
        str(Path(store.removeprefix("sqlite:///")).with_suffix(".lock")),
        "--summary-json",
        str(summary),
    ]
    result = measure(cmd, env)
    parent = json.loads(summary.read_text())["run_id"]
    return {**result, "own_train_seconds": logged_training_seconds(store, parent)}


def logged_training_seconds(store: str, parent_run_id: str) -> float:
    """Sum of ``train_seconds`` over the workflow's candidate runs: its own training, timed in the same
    process at the same moment, so ``wall / own training`` is free of run-to-run machine noise."""
    import mlflow

    from nlu_mlflow import constants as c

    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return float(runs[f"metrics.{c.TRAIN_SECONDS}"].sum())


def production_archive(store: str, work: Path) -> Path:
    import mlflow

    from nlu_mlflow.tracking import models as pyfunc_model

    mlflow.set_tracking_uri(store)
    return pyfunc_model.archive_path("models:/bench-nlu@production", work / "production")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "rasa-demo-flat")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--configs", type=Path, default=ROOT / "configs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: data/pizza, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.data, args.epochs, args.configs = ROOT / "data" / "pizza", 1, ROOT / "configs" / "logreg_crf.yml"
    # this process only reads the stores: keep MLflow's migration logs, progress bars and Rasa's
    # import warnings out of the printed table
    logging.disable(logging.INFO)
    warnings.simplefilter("ignore")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    train, test = args.data / "train.yml", args.data / "test.yml"
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "RASA_MAX_CACHE_SIZE": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    work = Path(tempfile.mkdtemp(prefix="nlu-mlflow-bench-"))
    try:
        store = f"sqlite:///{work / 'mlruns.db'}"
        print(f"setup: a first workflow run registers production ({args.data.name}, {args.epochs} epochs)")
        workflow(args.configs, train, test, args.epochs, store, env)
        production = production_archive(store, work)
        print("workflow: nlu-mlflow run with production registered")
        flow = workflow(args.configs, train, test, args.epochs, store, env)
        print("loop: rasa train nlu + rasa test nlu per config, + rasa test nlu of production")
        loop = seed_loop(
            capped_configs(args.configs, args.epochs, work / "configs"), train, test, production, work, env
        )
        print("floor: in-process training only")
        floor = measure(
            [
                sys.executable,
                "-c",
                FLOOR,
                str(train),
                str(work / "floor"),
                str(args.epochs),
                str(args.configs),
            ],
            env,
        )
        report(args, loop, flow, floor)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(args, loop: dict, flow: dict, floor: dict) -> None:
    rows = {"loop (seed-style)": loop, "nlu-mlflow run": flow, "floor (training only)": floor}
    print(f"\n{'':24}{'wall s':>10}{'cpu s':>10}{'peak MB':>10}")
    for name, r in rows.items():
        print(f"{name:24}{r['wall']:>10.1f}{r['cpu']:>10.1f}{r['peak_mb']:>10.0f}")
    print(
        f"{'  run: own training':24}{flow['own_train_seconds']:>10.1f}   (the train_seconds its runs logged)"
    )
    ratios = {
        "workflow/loop wall": flow["wall"] / loop["wall"],
        "workflow/floor wall": flow["wall"] / floor["wall"],
        "workflow wall / its own training": flow["wall"] / flow["own_train_seconds"],
        "workflow/loop cpu": flow["cpu"] / loop["cpu"],
        "workflow peak / largest rasa train nlu peak": flow["peak_mb"] / loop["largest_train_peak_mb"],
    }
    print()
    for name, value in ratios.items():
        print(f"{name:46}{value:>8.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "data": str(args.data),
                "epochs": args.epochs,
                "loop": loop,
                "workflow": flow,
                "floor": floor,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
