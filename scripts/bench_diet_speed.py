"""Benchmark: DIET's epoch time on this CPU under TensorFlow's thread settings and Rasa's batch options.

    /work/bin/heavy .venv/bin/python scripts/bench_diet_speed.py --sample 2000 --epochs 4 --rounds 2
    /work/bin/heavy .venv/bin/python scripts/bench_diet_speed.py --quick     # 300 examples, 2 epochs, 1 round

Trains configs/diet.yml (its 100 configured epochs, seed 42, so the batch-size schedule is the real one) on a
seeded, intent-stratified sample of snips' train.yml and stops it after ``--epochs`` epochs (a Keras callback
sets ``stop_training``); the first epoch holds TensorFlow's graph tracing, so the epoch time reported is the
median of the later ones. Each setting is one process (TensorFlow's thread pools are fixed at its start), the
settings run in turn A/B/C/A/B/C... (``--rounds``) so that other load on the shared machine hits all of them.

Settings (``--settings``, comma separated):
  default     nothing set: TensorFlow sizes both pools from the CPU count
  intra1      TF_INTRA_OP_PARALLELISM_THREADS=1, TF_INTER_OP_PARALLELISM_THREADS=1
  intra2      TF_INTRA_OP_PARALLELISM_THREADS=2, TF_INTER_OP_PARALLELISM_THREADS=1
  inter2      TF_INTRA_OP_PARALLELISM_THREADS=1, TF_INTER_OP_PARALLELISM_THREADS=2
  batch256    no thread setting; DIET batch_size 256 (fixed) instead of [64, 256]
  sequence    no thread setting; DIET batch_strategy sequence instead of balanced
Rasa reads the TF_* variables only in its own CLI (``rasa/__main__.py`` calls
``rasa.utils.tensorflow.environment.setup_tf_environment``); the worker calls that same function, as
``nlu_mlflow.rasa.runtime`` does. Each run is scored on snips' test.yml (intent and entity weighted F1) after
its few epochs: equal threads settings must give equal scores; batch settings change the training itself, and
their scores after a few epochs say nothing of a full training's. Nothing is asserted: the numbers are for
people; JSON in bench-results/diet-speed-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SNIPS = ROOT.parent / "shared" / "datasets" / "snips"
THREADS = ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
SETTINGS = {
    "default": ({}, {}),
    "intra1": ({THREADS[0]: "1", THREADS[1]: "1"}, {}),
    "intra2": ({THREADS[0]: "2", THREADS[1]: "1"}, {}),
    "inter2": ({THREADS[0]: "1", THREADS[1]: "2"}, {}),
    "batch256": ({}, {"batch_size": 256}),
    "sequence": ({}, {"batch_strategy": "sequence"}),
}


def sample(train: Path, size: int, seed: int, out: Path) -> Path:
    """A seeded sample of ``size`` examples, the same share of each intent, written as Rasa YAML."""
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu_mlflow.rasa.data import load_nlu

    data = load_nlu(train).training_data
    by_intent: dict[str, list] = {}
    for message in data.intent_examples:
        by_intent.setdefault(message.get("intent"), []).append(message)
    share = min(1.0, size / len(data.intent_examples))
    rng = random.Random(seed)
    picked = [m for group in by_intent.values() for m in rng.sample(group, max(1, round(len(group) * share)))]
    out.write_text(TrainingData(picked).nlu_as_yaml(), encoding="utf-8")
    return out


def worker(spec: dict) -> dict:
    """One training in this process (the environment already carries the thread settings)."""
    import tensorflow as tf
    from rasa.utils import train_utils
    from rasa.utils.tensorflow.environment import setup_tf_environment

    from nlu_mlflow import constants as c
    from nlu_mlflow.rasa import pipelines, scoring, training
    from nlu_mlflow.rasa.data import load_nlu

    setup_tf_environment()
    ends: list[float] = []

    class Stop(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # noqa: ARG002
            ends.append(time.perf_counter()) if not ends else None

        def on_epoch_end(self, epoch, logs=None):  # noqa: ARG002
            ends.append(time.perf_counter())
            self.model.stop_training = len(ends) > spec["epochs"]

    original = train_utils.create_common_callbacks
    train_utils.create_common_callbacks = lambda *a, **k: [*original(*a, **k), Stop()]
    config = pipelines.load(ROOT / "configs" / "diet.yml", seed=42)
    for step in config.pipeline:
        if step["name"] == "DIETClassifier":
            step.update(spec["diet"])
    work = Path(spec["work"])
    model = training.train(config, Path(spec["train"]), work)
    epochs = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    test = load_nlu(Path(spec["test"]))
    scores = scoring.score_archive(model.archive, test, None, pipelines.entity_extractors(config), work / "e")
    metrics = scores.metrics
    return {
        "threads": [
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ],
        "epoch_seconds": epochs,
        "train_seconds": model.seconds,
        "intent_f1": metrics[c.INTENT_F1_WEIGHTED],
        "entity_f1": metrics.get(c.ENTITY_F1_WEIGHTED),
    }


def run_one(name: str, args, train: Path, test: Path, work: Path) -> dict:
    env_vars, diet = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in THREADS} | env_vars
    spec = {"epochs": args.epochs, "diet": diet, "train": str(train), "test": str(test), "work": str(work)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{name}: worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result |= {"setting": name, "wall": time.perf_counter() - started, "load_after": os.getloadavg()[0]}
    later = result["epoch_seconds"][1:]
    result["epoch_median"] = statistics.median(later) if later else result["epoch_seconds"][0]
    print(
        f"{name:10} threads {result['threads']}  epochs {[round(s, 1) for s in result['epoch_seconds']]}"
        f"  median later {result['epoch_median']:.2f}s  intent F1 {result['intent_f1']:.4f}"
        f"  entity F1 {result['entity_f1'] or 0:.4f}  wall {result['wall']:.0f}s"
        f"  load {result['load_after']:.1f}",
        flush=True,
    )
    return result


def summary(results: list[dict], baseline: str) -> dict:
    table = {}
    for name in dict.fromkeys(r["setting"] for r in results):
        mine = [r for r in results if r["setting"] == name]
        medians = [r["epoch_median"] for r in mine]
        table[name] = {
            "epoch_median": statistics.median(medians),
            "epoch_min": min(medians),
            "epoch_max": max(medians),
            "intent_f1": statistics.mean(r["intent_f1"] for r in mine),
            "entity_f1": statistics.mean(r["entity_f1"] or 0 for r in mine),
        }
    base = table[baseline]
    print(f"\n{'setting':10}{'epoch s':>9}{'min':>7}{'max':>7}{'ratio':>8}{'intent F1':>11}{'entity F1':>11}")
    for name, row in table.items():
        row["ratio"] = row["epoch_median"] / base["epoch_median"]
        row["d_intent"] = row["intent_f1"] - base["intent_f1"]
        row["d_entity"] = row["entity_f1"] - base["entity_f1"]
        print(
            f"{name:10}{row['epoch_median']:9.2f}{row['epoch_min']:7.2f}{row['epoch_max']:7.2f}"
            f"{row['ratio']:7.2f}x{row['d_intent']:+11.4f}{row['d_entity']:+11.4f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="examples drawn from snips train.yml")
    parser.add_argument("--epochs", type=int, default=4, help="epochs trained per run (the first is tracing)")
    parser.add_argument("--rounds", type=int, default=2, help="times each setting runs, interleaved")
    parser.add_argument("--settings", default="default,intra1,intra2,batch256")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="300 examples, 2 epochs, 1 round, 2 settings")
    parser.add_argument(
        "--out", type=Path, default=None, help="the JSON file [bench-results/diet-speed-TIME.json]"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.quick:
        args.sample, args.epochs, args.rounds, args.settings = 300, 2, 1, "default,intra1"
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"--settings: unknown {unknown}; known: {', '.join(SETTINGS)}")
    with tempfile.TemporaryDirectory(prefix="bench-diet-speed-") as tmp:
        train = sample(SNIPS / "train.yml", args.sample, args.seed, Path(tmp) / "train.yml")
        count = train.read_text().count("\n    - ")
        print(f"snips sample: {count} examples, {args.epochs} epochs", flush=True)
        results = [
            run_one(name, args, train, SNIPS / "test.yml", Path(tmp) / f"{name}-{r}")
            for r in range(args.rounds)
            for name in names
        ]
    table = summary(results, names[0])
    out = args.out or ROOT / "bench-results" / f"diet-speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "runs": results, "summary": table}, indent=2, default=str))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
