"""Time Rasa's per-message evaluation against the batched path on one test set; check they agree.

    .venv/bin/python scripts/measure_batched.py \
        --data ../shared/datasets/rasa-demo-flat --config configs/diet.yml --epochs 2

Trains the config on <data>/train.yml (or loads --archive), loads the model once, then times
``rasa.nlu.test.get_eval_data`` and ``nlu_mlflow.rasa.batched.get_eval_data`` on <data>/test.yml
(model load excluded; both paths are warmed up first and start after a full garbage collection).
Prints the seconds, the ratio, the largest confidence differences, and whether per-example
results and the report JSONs agree (1e-6; entity confidences 1e-5).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

from nlu_mlflow.rasa import batched, evaluation, pipelines, training
from nlu_mlflow.rasa import runtime as rasa_runtime
from nlu_mlflow.rasa.data import load_nlu

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the comparison helper lives with the tests
from tests.helpers.compare import differences

TOLERANCE = 1e-6
# batched matrix products round differently from one-message ones; entity confidences drift most
KEY_TOLERANCES = {"confidence_entity": 1e-5}


def _archive(args: argparse.Namespace, work: Path) -> Path:
    if args.archive:
        return args.archive
    config = pipelines.load(args.config, epochs=args.epochs, seed=42)
    train_yaml = load_nlu(args.data / "train.yml").to_yaml(work / "train.yml")
    model = training.train(config, train_yaml, work)
    print(f"trained {args.config} ({args.epochs} epochs) in {model.seconds:.1f} s")
    return model.archive


def _max_deviations(expected: tuple, actual: tuple) -> tuple[float, float]:
    """Largest |difference| of intent confidences and of entity confidences."""
    intents = [abs(e.confidence - a.confidence) for e, a in zip(expected[0], actual[0], strict=True)]
    entities = [
        abs(e["confidence_entity"] - a["confidence_entity"])
        for er, ar in zip(expected[2], actual[2], strict=True)
        for e, a in zip(er.entity_predictions, ar.entity_predictions, strict=False)
        if "confidence_entity" in e and "confidence_entity" in a
    ]
    return max(intents, default=0.0), max(entities, default=0.0)


def _timed(fn, *args):
    gc.collect()  # neither path pays for the other's garbage
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/rasa-demo-flat"))
    parser.add_argument("--config", type=Path, default=Path("configs/diet.yml"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--archive", type=Path, help="a trained model archive (skips training)")
    args = parser.parse_args()
    rasa_runtime.quiet_rasa()
    from rasa.core.channels.channel import UserMessage
    from rasa.nlu.test import get_eval_data

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        processor, load_s = _timed(evaluation.load_processor, _archive(args, work))
        test = load_nlu(args.data / "test.yml").training_data
        print(f"model load {load_s:.1f} s; batched path supported: {batched.supports(processor)}")
        batched.parse_texts(processor, ["hello", "warm up the batched path"])
        asyncio.run(processor.parse_message(UserMessage("warm up Rasa's path")))

        rasa_data, rasa_s = _timed(lambda: asyncio.run(get_eval_data(processor, test)))
        batched_data, batched_s = _timed(batched.get_eval_data, processor, test)
        n = len(test.nlu_examples)
        print(f"examples: {n}")
        print(f"rasa get_eval_data:    {rasa_s:7.2f} s ({1000 * rasa_s / n:.2f} ms/example)")
        print(f"batched get_eval_data: {batched_s:7.2f} s ({1000 * batched_s / n:.2f} ms/example)")
        print(f"speed-up: {rasa_s / batched_s:.1f}x")

        per_example = differences(rasa_data, batched_data, TOLERANCE, KEY_TOLERANCES)
        rasa_reports = evaluation.report_contents(rasa_data, work / "rasa")
        reports = differences(
            rasa_reports,
            evaluation.report_contents(batched_data, work / "batched"),
            TOLERANCE,
            KEY_TOLERANCES,
        )
        for line in (per_example + reports)[:20]:
            print("  differs:", line)
        intent_dev, entity_dev = _max_deviations(rasa_data, batched_data)
        print(f"max |confidence difference|: intents {intent_dev:.2g}, entities {entity_dev:.2g}")
        print(
            f"per-example results equal: {not per_example}; report JSONs equal: {not reports} "
            f"(tolerance {TOLERANCE:g}, entity confidences {KEY_TOLERANCES['confidence_entity']:g})"
        )


if __name__ == "__main__":
    main()
