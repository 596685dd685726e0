"""Benchmark: `inbox collect` against a plain SELECT + json.loads loop over the same tracker-store rows.

For each database (SQLite; PostgreSQL when its binaries are installed) and two sizes (to show memory flat in
the number of events), the script writes a tracker store in Rasa's own schema (``SQLTrackerStore.SQLEvent``)
with N user events (event JSON from Rasa's ``UserUttered.as_dict``), one bot action after each and a fallback
action after some, then measures, each in a fresh child process (peak RSS from ``wait4``):

- plain: ``SELECT id, data FROM events WHERE type_name = 'user' ORDER BY id`` streamed (``yield_per``;
  server-side cursor on PostgreSQL), ``json.loads`` of every row, nothing else;
- collect: ``workflow.inbox.collect`` into a fresh inbox (masking, folding, inbox writes, watermark).

The production parse of the unique texts is timed apart (a light model trained on the pizza data, batched
through ``rasa.inference.parse_texts``), with the share of unique texts. Goal: collect at least half the plain
loop's events/s, peak memory flat in N. Prints a table; JSON in bench-results/inbox.json.

    .venv/bin/python scripts/bench_inbox.py                # 200k and 1M events, SQLite and PostgreSQL
    .venv/bin/python scripts/bench_inbox.py --quick        # 5k and 20k events (the suite runs this)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 20_000
BASE_TIME = 1_790_000_000.0
WORDS = [
    "pizza",
    "pepperoni",
    "large",
    "small",
    "medium",
    "order",
    "cancel",
    "status",
    "where",
    "is",
    "my",
    "please",
    "want",
    "two",
    "three",
    "tonight",
    "weather",
    "shoes",
    "book",
    "flight",
    "hello",
    "thanks",
    "bye",
    "human",
    "agent",
    "card",
    "email",
    "call",
    "price",
    "menu",
    "vegan",
    "cheese",
]
INTENTS = ("purchase", "greet", "check_order_status", "cancel_order", "faq", "goodbye", "thank_you", "deny")


def texts(unique: int, seed: int) -> list[str]:
    """``unique`` distinct texts; some carry an e-mail or a phone number (masking has work to do)."""
    rng, found = random.Random(seed), set()
    while len(found) < unique:
        words = rng.choices(WORDS, k=rng.randint(2, 9))
        roll = rng.random()
        if roll < 0.03:
            words.append(f"user{rng.randint(1, 10**6)}@example.org")
        elif roll < 0.06:
            words.append(f"+49 151 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}")
        found.add(" ".join(words))
    return sorted(found)


def templates(unique_texts: list[str], seed: int) -> list[dict]:
    """One user event per text, as Rasa stores it (``UserUttered.as_dict``): parse, ranking of 8 intents."""
    from rasa.shared.core.events import UserUttered

    rng, out = random.Random(seed), []
    for text in unique_texts:
        weights = sorted((rng.random() for _ in INTENTS), reverse=True)
        total = sum(weights)
        names = rng.sample(INTENTS, len(INTENTS))
        ranking = [{"name": n, "confidence": w / total} for n, w in zip(names, weights, strict=True)]
        parse = {"intent": dict(ranking[0]), "entities": [], "text": text, "intent_ranking": ranking}
        event = UserUttered(
            text, parse["intent"], [], parse_data=parse, input_channel="rest", message_id="0" * 32,
            metadata={"model_id": "old-model"}, timestamp=BASE_TIME,
        )  # fmt: skip
        out.append(event.as_dict())
    return out


def rows(events: int, unique: int, seed: int):
    """(sender_id, type_name, timestamp, intent_name, action_name, data) in insertion order."""
    rng = random.Random(seed)
    pool = templates(texts(unique, seed), seed)
    action = {"event": "action", "name": "utter_greet", "policy": "RulePolicy", "confidence": 1.0}
    for n in range(events):
        event = dict(pool[n % unique if n < unique else rng.randrange(unique)])
        when = BASE_TIME + n * 0.5
        event["timestamp"], event["message_id"] = when, f"{n:032x}"
        sender = f"user-{rng.randrange(max(events // 20, 1))}"
        yield sender, "user", when, event["parse_data"]["intent"]["name"], None, json.dumps(event)
        name = "action_default_fallback" if rng.random() < 0.05 else "utter_greet"
        yield (
            sender,
            "action",
            when + 0.1,
            None,
            name,
            json.dumps({**action, "name": name, "timestamp": when}),
        )


def write_store(url: str, events: int, unique: int, seed: int) -> None:
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore

    engine = sa.create_engine(url, future=True)
    table = SQLTrackerStore.SQLEvent.__table__
    table.drop(engine, checkfirst=True)
    table.create(engine)
    columns = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
    batch = []
    with engine.begin() as connection:
        for row in rows(events, unique, seed):
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) >= CHUNK:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
    engine.dispose()


def measure_plain(url: str) -> dict:
    import sqlalchemy as sa

    engine = sa.create_engine(url, future=True)
    started, cpu, count = time.perf_counter(), time.process_time(), 0
    with engine.connect() as connection:
        query = sa.text("SELECT id, data FROM events WHERE type_name = 'user' ORDER BY id")
        for _, data in connection.execution_options(yield_per=2000).execute(query):
            json.loads(data)
            count += 1
    return {
        "events": count,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def measure_collect(url: str, inbox_url: str) -> dict:
    from nlu_mlflow.decide.inbox import Rules
    from nlu_mlflow.live.inbox_store import InboxStore
    from nlu_mlflow.workflow import inbox

    os.environ.setdefault("NLU_MLFLOW_INBOX_SECRET", "bench-secret")
    store = InboxStore(inbox_url)
    started, cpu = time.perf_counter(), time.process_time()
    done = inbox.collect(store, url, Rules())
    seconds = time.perf_counter() - started
    return {
        "events": done.events,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "items": store.item_count(),
        "malformed": done.malformed,
    }


def measure_parse(inbox_url: str, work: Path) -> dict:
    """The production parse of every unique (open) text, batched, with a light model on the pizza data."""
    from nlu_mlflow.decide.inbox import Rules
    from nlu_mlflow.live.inbox_store import InboxStore
    from nlu_mlflow.rasa import fast_load, inference, pipelines, runtime, training
    from nlu_mlflow.rasa.archive import archive_model_id
    from nlu_mlflow.rasa.data import load_nlu
    from nlu_mlflow.workflow import inbox

    runtime.quiet_rasa()
    config = pipelines.load(ROOT / "configs" / "logreg_crf.yml", epochs=1, seed=42)
    model = training.train(
        config, load_nlu(ROOT / "data" / "pizza" / "train.yml").to_yaml(work / "t.yml"), work
    )
    processor = fast_load.load_processor(model.archive)
    production = inbox.Production(
        "1", archive_model_id(model.archive), lambda t: inference.parse_texts(processor, t)
    )
    store = InboxStore(inbox_url)
    started = time.perf_counter()
    parsed, disagree = inbox.reparse(store, production, Rules())
    return {"texts": parsed, "disagreements": disagree, "seconds": time.perf_counter() - started}


def child(kind: str, *args: str) -> dict:
    """One measurement in a fresh process: its result and its peak resident memory (MiB, ``peak_mib``)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--measure", kind, *args], stdout=subprocess.PIPE, env={**os.environ}
    )
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {kind} failed with status {proc.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM: per address space, so a fresh exec starts from zero;
    ``ru_maxrss`` would carry the forking parent's size over)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_database(name: str, url: str, sizes: list[int], unique_share: float, work: Path) -> list[dict]:
    results = []
    for events in sizes:
        unique = max(int(events * unique_share), 1)
        started = time.perf_counter()
        write_store(url, events, unique, seed=events)
        print(f"[{name}] wrote {events:,} user events ({unique:,} unique texts) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        inbox_url = f"sqlite:///{work / f'inbox-{name}-{events}.db'}"
        # the plain loop before and after collect, its faster run counted (load on a shared machine varies)
        before, collect, after = child("plain", url), child("collect", url, inbox_url), child("plain", url)
        plain = min(before, after, key=lambda r: r["seconds"])
        results.append(_row(name, events, unique, plain, collect))
    parse = child("parse", f"sqlite:///{work / f'inbox-{name}-{sizes[-1]}.db'}", str(work))
    results[-1]["parse"] = parse
    return results


def _row(name: str, events: int, unique: int, plain: dict, collect: dict) -> dict:
    if plain["events"] != events or collect["events"] != events:
        raise RuntimeError(
            f"{name}: read {plain['events']} (plain) and {collect['events']} (collect) of {events}"
        )
    plain_rate, collect_rate = events / plain["seconds"], events / collect["seconds"]
    return {
        "database": name, "events": events, "unique_texts": unique, "unique_share": unique / events,
        "plain_events_per_s": plain_rate, "collect_events_per_s": collect_rate,
        "rate_ratio": collect_rate / plain_rate, "cpu_ratio": plain["cpu_seconds"] / collect["cpu_seconds"],
        "plain_peak_mib": plain["peak_mib"],
        "collect_peak_mib": collect["peak_mib"], "inbox_items": collect["items"],
    }  # fmt: skip


def report(results: list[dict]) -> None:
    print(f"\n{'db':<10} {'events':>9} {'unique':>7} {'plain ev/s':>11} {'collect ev/s':>13} {'ratio':>6} "
          f"{'cpu ratio':>9} {'plain MiB':>9} {'collect MiB':>11}")  # fmt: skip
    for r in results:
        print(f"{r['database']:<10} {r['events']:>9,} {r['unique_share']:>7.1%} "
              f"{r['plain_events_per_s']:>11,.0f} {r['collect_events_per_s']:>13,.0f} "
              f"{r['rate_ratio']:>6.2f} {r['cpu_ratio']:>9.2f} "
              f"{r['plain_peak_mib']:>9.0f} {r['collect_peak_mib']:>11.0f}")  # fmt: skip
    for r in results:
        if "parse" in r:
            p = r["parse"]
            print(f"{r['database']}: production parse of {p['texts']:,} unique texts "
                  f"({r['unique_share']:.1%} of {r['events']:,} events): {p['seconds']:.1f} s, "
                  f"{p['texts'] / p['seconds']:,.0f} texts/s (apart from collect)")  # fmt: skip
    by_db: dict[str, list[dict]] = {}
    for r in results:
        by_db.setdefault(r["database"], []).append(r)
    for name, rs in by_db.items():
        small, large = rs[0], rs[-1]
        print(
            f"{name}: rate ratio {min(r['rate_ratio'] for r in rs):.2f} at worst (goal >= 0.5); collect peak "
            f"memory {small['collect_peak_mib']:.0f} MiB at {small['events']:,} events, "
            f"{large['collect_peak_mib']:.0f} MiB at {large['events']:,} "
            f"({large['events'] / small['events']:.0f}x the events)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="5k and 20k events (the suite runs this).")
    parser.add_argument("--unique-share", type=float, default=0.02)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "inbox.json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.measure:
        measured = {"plain": measure_plain, "collect": measure_collect}.get(args.measure)
        result = measured(*rest) if measured else measure_parse(rest[0], Path(rest[1]))
        print(json.dumps({**result, "peak_mib": peak_mib()}))
        return
    sizes = [5_000, 20_000] if args.quick else sorted(args.sizes)
    results = bench(sizes, args.unique_share, not args.no_postgres)
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.out}")


def bench(sizes: list[int], unique_share: float, postgres: bool) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp:
        work = Path(tmp)
        results = run_database("sqlite", f"sqlite:///{work / 'rasa.db'}", sizes, unique_share, work)
        if postgres:
            from tests.helpers import servers

            if servers.postgres_bin() is None:
                print("PostgreSQL not installed (bash scripts/install-postgres.sh): SQLite only")
                return results
            with servers.postgres(extra_databases=("rasa",)) as uri:
                url = uri.rsplit("/", 1)[0] + "/rasa"
                results += run_database("postgresql", url, sizes, unique_share, work)
        return results


if __name__ == "__main__":
    main()
