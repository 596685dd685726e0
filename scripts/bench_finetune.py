"""Benchmark: the nightly run fine-tuning from production vs training from scratch, on grown data.

    python scripts/bench_finetune.py --data ../shared/datasets/rasa-demo-flat --epochs 100 --fraction 0.2

Replays continuous training on a data set read at run time (never copied into the repo):
  night 0   the training data less a seeded 20% (every intent and entity type kept in the 80%): one
            `nlu-mlflow run` with --configs (DIET) and the epoch cap registers and promotes production
  then the held-back 20% is added and the nightly run is made twice from that same production, same seed,
  epoch cap and test set, nothing promoted:
  fine-tune `nlu-mlflow run --finetune-only --epoch-fraction F --full-retrain-growth 1` (candidate
            <config>@finetuned; 20% held back is 25% growth, which the default full_retrain_growth 0.2 would
            answer with a full retrain)
  scratch   `nlu-mlflow run --no-finetune`
and prints the training time each candidate run logged (`train_seconds`, in-process), the wall time of each
run, the test-set intent and entity F1, the ratios and the differences; JSON in bench-results/. Each run is
its own process. Goal: fine-tuning at most 0.3x the from-scratch training time, F1 within 0.01. Nothing is
asserted: the numbers are for people.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, also where another one is installed
MODEL = "bench-finetune"


def labels(message) -> set[str]:
    entities = message.get("entities") or []
    return {f"intent:{message.get('intent')}"} | {
        f"{key}:{e[key]}" for e in entities for key in ("entity", "role", "group") if e.get(key)
    }


def split(train: Path, share: float, seed: int, work: Path) -> tuple[Path, Path, dict]:
    """``base.yml`` (the seeded ``1 - share`` of the examples, topped up so that it has every label) and
    ``full.yml`` (all of them), both as Rasa writes them."""
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu_mlflow.rasa.data import load_nlu

    data = load_nlu(train).training_data
    examples = list(data.training_examples)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = round(len(order) * (1 - share))
    base, held = order[:cut], order[cut:]
    known = set().union(*(labels(examples[i]) for i in base))
    moved = []
    for (
        i
    ) in held:  # an example with a label the base lacks moves into the base (Rasa fine-tunes no new label)
        if not labels(examples[i]) <= known:
            known |= labels(examples[i])
            moved.append(i)
    base += moved
    held = [i for i in held if i not in set(moved)]
    base_data = TrainingData(
        [examples[i] for i in sorted(base)],
        entity_synonyms=data.entity_synonyms,
        regex_features=data.regex_features,
        lookup_tables=data.lookup_tables,
    )
    (work / "base.yml").write_text(base_data.nlu_as_yaml(), encoding="utf-8")
    (work / "full.yml").write_text(data.nlu_as_yaml(), encoding="utf-8")
    facts = {"examples": len(examples), "base": len(base), "added": len(held), "moved_for_labels": len(moved)}
    return work / "base.yml", work / "full.yml", facts


def night(args, name: str, data: Path, work: Path, env: dict, *extra: str) -> dict:
    """One `nlu-mlflow run` in its own process; its wall time and what its chosen candidate logged."""
    summary = work / f"{name}.json"
    cmd = [
        sys.executable, "-m", "nlu_mlflow.cli", "run", "--data", str(data),
        "--test-data", str(args.data / "test.yml"), "--configs", str(args.configs),
        "--epochs", str(args.epochs), "--seed", str(args.seed), "--tracking-uri", args.store,
        "--experiment", "bench-finetune", "--model-name", MODEL, "--allow-conflicts", "--min-examples", "1",
        "--lock-file", str(work / "run.lock"), "--summary-json", str(summary), *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name}: nlu-mlflow run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(summary.read_text())
    return {"wall": wall, **candidate(args.store, result), "log": done.stderr}


def candidate(store: str, summary: dict) -> dict:
    import mlflow

    from nlu_mlflow import constants as c

    client = mlflow.MlflowClient(store)
    run = client.get_run(summary["candidate"]["run_id"])
    parent = client.get_run(summary["run_id"]).data.tags
    metrics = run.data.metrics
    return {
        "candidate": run.info.run_name,
        "train_seconds": metrics[c.TRAIN_SECONDS],
        "eval_seconds": metrics[c.EVAL_SECONDS],
        "intent_f1": metrics[c.INTENT_F1_WEIGHTED],
        "entity_f1": metrics.get(c.ENTITY_F1_WEIGHTED),
        "finetune_notes": {k: v for k, v in parent.items() if k.startswith(c.TAG_FINETUNE_PREFIX)},
        "lineage": {k: v for k, v in run.data.tags.items() if k.startswith("nlu_mlflow.") and "." in k},
    }


def report(base: dict, tuned: dict, scratch: dict, facts: dict, args) -> dict:
    ratio = tuned["train_seconds"] / scratch["train_seconds"]
    d_intent = tuned["intent_f1"] - scratch["intent_f1"]
    d_entity = (tuned["entity_f1"] or 0.0) - (scratch["entity_f1"] or 0.0)
    rows = [
        ("night 0 (promoted)", base),
        (f"fine-tuned ({args.fraction:g})", tuned),
        ("from scratch", scratch),
    ]
    print(f"\n{'':26}{'train s':>9}{'wall s':>9}{'intent F1':>11}{'entity F1':>11}")
    for label, r in rows:
        f1 = f"{r['intent_f1']:11.4f}{r['entity_f1'] or 0:11.4f}"
        print(f"{label:26}{r['train_seconds']:9.1f}{r['wall']:9.1f}{f1}")
    wall_ratio = tuned["wall"] / scratch["wall"]
    print(f"{'fine-tuned / scratch':26}{ratio:8.2f}x{wall_ratio:8.2f}x{d_intent:+11.4f}{d_entity:+11.4f}")
    goals = {
        "time": ratio <= 0.3,
        "f1_within": abs(d_intent) <= 0.01 and abs(d_entity) <= 0.01,
        "f1_not_worse": d_intent >= -0.01 and d_entity >= -0.01,
    }
    print(f"goal, training at most 0.30x: {verdict(goals['time'])} ({ratio:.2f}x)")
    print(
        f"goal, intent and entity F1 within 0.01 of scratch: {verdict(goals['f1_within'])} "
        f"(intent {d_intent:+.4f}, entity {d_entity:+.4f}); "
        f"none more than 0.01 below scratch: {verdict(goals['f1_not_worse'])}"
    )
    print(
        f"data: {facts['base']} examples, then {facts['added']} added ({facts['moved_for_labels']} moved "
        f"into the base to keep every label); load average {os.getloadavg()[0]:.2f}"
    )
    return {
        "train_ratio": ratio,
        "wall_ratio": wall_ratio,
        "intent_f1_diff": d_intent,
        "entity_f1_diff": d_entity,
        "goals": goals,
    }


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "rasa-demo-flat")
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "diet.yml")
    parser.add_argument("--epochs", type=int, default=100)  # diet.yml's own
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--held-back", type=float, default=0.2, help="share of the data added after night 0")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_finetune.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: data/pizza, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.data, args.epochs = ROOT / "data" / "pizza", 1
    logging.disable(logging.INFO)
    warnings.simplefilter("ignore")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "RASA_MAX_CACHE_SIZE": "0",  # no training cache: every run trains what it trains
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-bench-finetune-") as tmp:
        work = Path(tmp)
        args.store = f"sqlite:///{work / 'mlruns.db'}"
        import mlflow

        mlflow.MlflowClient(args.store).create_experiment("bench-finetune", (work / "artifacts").as_uri())
        base_yml, full_yml, facts = split(args.data / "train.yml", args.held_back, args.seed, work)
        night0 = f"night 0: {facts['base']} of {facts['examples']} examples, {args.configs.name}"
        print(f"{night0}, --epochs {args.epochs}")
        base = night(args, "night0", base_yml, work, env)
        print(
            f"fine-tune: {facts['added']} examples added, --finetune-only --epoch-fraction {args.fraction:g}"
        )
        # 20% held back is 25% growth over the base: above full_retrain_growth's default, which would send
        # this night to a full retrain; the benchmark measures the fine-tune itself
        tuned = night(args, "finetune", full_yml, work, env, "--finetune-only", "--epoch-fraction",
                      str(args.fraction), "--full-retrain-growth", "1", "--no-promote")  # fmt: skip
        if not tuned["candidate"].endswith("@finetuned"):
            raise SystemExit(f"the fine-tune night did not fine-tune: {tuned['finetune_notes']}")
        print("scratch: the same night from scratch, --no-finetune")
        scratch = night(args, "scratch", full_yml, work, env, "--no-finetune", "--no-promote")
        ratios = report(base, tuned, scratch, facts, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = {
        k: {x: y for x, y in v.items() if x != "log"}
        for k, v in [("night0", base), ("finetune", tuned), ("scratch", scratch)]
    }
    settings = {
        "data": str(args.data), "configs": str(args.configs), "epochs": args.epochs,
        "fraction": args.fraction, "seed": args.seed, "held_back": args.held_back,
    }  # fmt: skip
    args.out.write_text(
        json.dumps({"settings": settings, "data": facts, "runs": runs, **ratios}, indent=2) + "\n"
    )
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
