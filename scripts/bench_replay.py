"""Benchmark: the replay's parse of a week of live traffic vs Rasa's own per-message parse.

    python scripts/bench_replay.py                       # 10,000 messages, rasa-demo-flat, both models
    python scripts/bench_replay.py --quick               # the suite's check: pizza data, 300 messages

Two models stand for production and the candidate: configs/diet.yml and configs/logreg_crf.yml trained on the
data's train.yml (capped epochs; --configs picks others). The live traffic is N messages drawn from the data's
test texts with a Zipf-like skew (a few texts said often, most once), as real traffic is. Loading is timed
apart. For each model, in the same run:
- Rasa: ``Agent.parse_message`` once per message (what a replay through Rasa's own API costs);
- replay: the replay's path (``inference.parse_texts`` on each unique text once: batched through the graph
  where the pipeline allows, Rasa's processor otherwise), and the same path on all N messages without the
  de-duplication, so the batching's own share is visible.
Prints the ratios replay/Rasa (goal: at most 0.1x where the batched path supports the pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def live_texts(test: Path, n: int, seed: int) -> list[str]:
    """N messages from the test texts, skewed: text k is said about 1/(k+1) as often as the first."""
    from nlu_mlflow.rasa.data import load_nlu

    texts = sorted({m.get("text") for m in load_nlu(test).examples})
    rng = random.Random(seed)
    rng.shuffle(texts)
    weights = [1.0 / (k + 1) ** 0.6 for k in range(len(texts))]
    return rng.choices(texts, weights=weights, k=n)


def train(config: Path, data: Path, epochs: int, work: Path) -> Path:
    from nlu_mlflow.rasa import data as nlu_data
    from nlu_mlflow.rasa import pipelines, training

    train_yaml = nlu_data.load_nlu(data / "train.yml").to_yaml(work / f"{config.stem}-train.yml")
    return training.train(pipelines.load(config, epochs, 42), train_yaml, work / config.stem).archive


def time_rasa(agent, texts: list[str]) -> float:
    from nlu_mlflow.rasa import aio

    async def parse_all() -> None:
        for text in texts:
            await agent.parse_message(text)

    started = time.perf_counter()
    aio.run(parse_all())
    return time.perf_counter() - started


def time_replay(processor, texts: list[str]) -> float:
    from nlu_mlflow.rasa import inference

    started = time.perf_counter()
    inference.parse_texts(processor, texts)
    return time.perf_counter() - started


def measure(archive: Path, texts: list[str]) -> dict:
    from nlu_mlflow.rasa import batched, fast_load

    started = time.perf_counter()
    agent = fast_load.load_agent(archive)
    load_s = time.perf_counter() - started
    unique = list(dict.fromkeys(texts))
    time_replay(agent.processor, unique[:8])  # warm-up: graph tracing, as Rasa's first parse below
    time_rasa(agent, unique[:8])
    result = {
        "load_s": load_s,
        "batched": batched.unsupported_reason(agent.processor) is None,
        "unsupported_reason": batched.unsupported_reason(agent.processor),
        "rasa_parse_message_s": time_rasa(agent, texts),
        "replay_unique_s": time_replay(agent.processor, unique),
        "replay_all_s": time_replay(agent.processor, texts),
    }
    result["ratio"] = result["replay_unique_s"] / result["rasa_parse_message_s"]
    result["ratio_without_dedup"] = result["replay_all_s"] / result["rasa_parse_message_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "rasa-demo-flat")
    parser.add_argument(
        "--configs",
        type=Path,
        nargs="+",
        default=[ROOT / "configs" / "diet.yml", ROOT / "configs" / "logreg_crf.yml"],
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument(
        "--quick", action="store_true", help="pizza data, 300 messages, 1 epoch (the suite's check)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "replay.json")
    args = parser.parse_args()
    if args.quick:
        args.data, args.n, args.epochs = ROOT / "data" / "pizza", 300, 1
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from nlu_mlflow.rasa import runtime

    runtime.quiet_rasa()
    texts = live_texts(args.data / "test.yml", args.n, seed=7)
    results = {"n": len(texts), "unique": len(set(texts)), "data": str(args.data), "epochs": args.epochs}
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-replay-") as tmp:
        for config in args.configs:
            results[config.stem] = measure(train(config, args.data, args.epochs, Path(tmp)), texts)
    report(results, [c.stem for c in args.configs])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict, names: list[str]) -> None:
    print(
        f"\n{results['n']} live messages, {results['unique']} unique ({results['unique'] / results['n']:.0%})"
    )
    for name in names:
        r = results[name]
        path = "batched graph" if r["batched"] else f"Rasa's processor ({r['unsupported_reason']})"
        print(
            f"{name}: load {r['load_s']:.1f} s (apart); Agent.parse_message x{results['n']} "
            f"{r['rasa_parse_message_s']:.2f} s; replay {r['replay_unique_s']:.2f} s -> {r['ratio']:.3f}x "
            f"(all {results['n']} without de-duplication: {r['ratio_without_dedup']:.3f}x) [{path}]"
        )
    both_rasa = sum(results[n]["rasa_parse_message_s"] for n in names)
    both_replay = sum(results[n]["replay_unique_s"] for n in names)
    print(
        f"both models: replay {both_replay:.2f} s vs Rasa {both_rasa:.2f} s -> {both_replay / both_rasa:.3f}x"
    )


if __name__ == "__main__":
    main()
