"""Benchmark: the pyfunc model scoring 1,000 utterances vs sequential `POST /model/parse` on `rasa run`.

    python scripts/bench_serving.py --data ../shared/datasets/rasa-demo-flat --epochs 2

Trains configs/diet.yml (capped epochs) on the data's train.yml, logs it as the project's pyfunc model
in a throw-away store, then on the same archive: starts `rasa run --enable-api --auth-token` and
times 1,000 sequential parse requests (the test utterances, repeated as needed), and times a
`predict` call of the loaded pyfunc on the same 1,000 texts (the median of 5 calls). Model loading is
not timed on either side.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PYFUNC_REPEATS = 5
sys.path.insert(0, str(ROOT))

from tests.helpers import servers  # noqa: E402  (real server start/stop helpers shared with the tests)


def texts_from(test: Path, n: int) -> list[str]:
    from nlu_mlflow.rasa.data import load_nlu

    texts = [m.get("text") for m in load_nlu(test).examples]
    return [texts[i % len(texts)] for i in range(n)]


def train_archive(data: Path, epochs: int, work: Path) -> Path:
    from nlu_mlflow.rasa import data as nlu_data
    from nlu_mlflow.rasa import pipelines, training
    from nlu_mlflow.rasa import runtime as rasa_runtime

    rasa_runtime.quiet_rasa()
    train_yaml = nlu_data.load_nlu(data / "train.yml").to_yaml(work / "train.yml")
    config = pipelines.load(ROOT / "configs" / "diet.yml", epochs, 42)
    return training.train(config, train_yaml, work / "model").archive


def time_rasa(archive: Path, texts: list[str], work: Path) -> float:
    token = secrets.token_hex(12)
    with servers.rasa_server(archive, token, work / "rasa.log") as api:
        session = requests.Session()
        session.post(f"{api.url}/model/parse", params={"token": token}, json={"text": texts[0]}, timeout=60)
        started = time.perf_counter()
        for text in texts:
            response = session.post(
                f"{api.url}/model/parse", params={"token": token}, json={"text": text}, timeout=60
            )
            response.raise_for_status()
        return time.perf_counter() - started


def time_pyfunc(archive: Path, texts: list[str], work: Path) -> list[float]:
    import mlflow
    import pandas as pd

    from nlu_mlflow.tracking import models as pyfunc_model

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlruns.db'}")
    with mlflow.start_run():
        uri = pyfunc_model.log_model(archive).model_uri
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame({"text": texts})
    model.predict(frame.head(8))  # warm-up, as the server's first request above
    times = []
    for _ in range(PYFUNC_REPEATS):  # one call is 1-2 s: a single timing is at the mercy of a shared host
        started = time.perf_counter()
        model.predict(frame)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "rasa-demo-flat")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "serving.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: data/pizza, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.data, args.epochs, args.n = ROOT / "data" / "pizza", 1, 50
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-serving-") as tmp:
        work = Path(tmp)
        archive = train_archive(args.data, args.epochs, work)
        texts = texts_from(args.data / "test.yml", args.n)
        rasa_seconds = time_rasa(archive, texts, work)
        pyfunc_times = time_pyfunc(archive, texts, work)
    pyfunc_seconds = statistics.median(pyfunc_times)
    result = {
        "n": args.n,
        "rasa_run_sequential_s": rasa_seconds,
        "pyfunc_batch_s": pyfunc_seconds,  # median of PYFUNC_REPEATS calls
        "pyfunc_batch_all_s": pyfunc_times,
        "speedup": rasa_seconds / pyfunc_seconds,
    }
    print(
        f"\n{args.n} utterances: rasa run POST /model/parse sequential {rasa_seconds:.2f} s, "
        f"pyfunc predict {pyfunc_seconds:.2f} s (median of {PYFUNC_REPEATS}) -> {result['speedup']:.1f}x"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
