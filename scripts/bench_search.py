"""Benchmark: what pruning saves in a hyperparameter search, and what the search finds over the default.

    python scripts/bench_search.py         # snips: 1,400-example seeded stratified sample, 6 trials, 9 epochs
    python scripts/bench_search.py --data data/pizza/train.yml --sample 0 --trials 6 --epochs 9   # quick
    python scripts/bench_search.py --example             # the full-budget study only: best vs default

Runs, in one invocation, on the same data split and config (``configs/search/diet_search.yml`` by default,
epochs capped by ``--epochs``), through ``nlu_mlflow.workflow.tune.search`` (what ``nlu-mlflow run --trials``
runs), each study in its own MLflow run of a throw-away store:
  full budget  ``--trials`` trials, TPE seeded with ``--seed``, no pruning: every trial trains all its
               epochs; trial 0 is the config's own values (the default config)
  pruning      the very same trials (their values enqueued in the same order), with successive halving:
               every trial trains the first rung's epochs, the best third three times as many, and so on
and prints, for both, the rungs scored and epochs trained over all trials, the wall and CPU time and the best
validation score, and the ratios pruning / full budget measured in this run (CPU time is the steadier one on a
shared machine). A DIET pipeline is scored at its rungs from inside one training (``rasa/rung_scores.py``):
a trial pays Rasa's fixed cost of building, tracing and featurizing once, and a pruned trial stops where it
was pruned; other pipelines train once per rung. It also prints the default config's validation score
against the best trial's (the search example). Nothing is asserted: the numbers are for people; the JSON
goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPS = ROOT.parent / "shared" / "datasets" / "snips" / "train.yml"
CONFIG = ROOT / "configs" / "search" / "diet_search.yml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=SNIPS, help="Rasa NLU training data (read, never copied)."
    )
    parser.add_argument(
        "--sample", type=int, default=1400, help="Seeded stratified sample of this many examples (0: all)."
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="A config with a `search:` section.")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=9, help="Epoch cap (rungs: cap/9, cap/3, cap).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--example", action="store_true", help="Only the full-budget study: best vs default.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_search.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: data/pizza, 1 epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.sample, args.trials, args.epochs = ROOT / "data" / "pizza" / "train.yml", 0, 2, 1
    return args


def load_data(args: argparse.Namespace):
    from nlu_mlflow.rasa.data import load_nlu, split

    data = load_nlu(args.data)
    n = len(data.examples)
    if args.sample and args.sample < n:
        # the held-out part of a seeded stratified split is a stratified sample of the wanted size
        _, data = split(data, args.sample / n, args.seed, "--sample", ("rest", f"sample of {args.sample}"))
    return data


def run_study(args, config, data, home: Path, pruning: bool, first: list[dict] | None):
    """One study inside its own MLflow run (the 'config run' its trials nest under)."""
    from nlu_mlflow.tracking import runs
    from nlu_mlflow.workflow import tune
    from nlu_mlflow.workflow.settings import WorkflowSettings

    settings = WorkflowSettings(
        data=args.data,
        seed=args.seed,
        epochs=args.epochs,
        trials=args.trials,
        pruning=pruning,
        validation_fraction=args.validation_fraction,
        study_storage=f"sqlite:///{home / 'optuna.db'}",
        project_dir=home,
    )
    name = "pruning" if pruning else "full-budget"
    cpu = cpu_seconds()
    with runs.candidate_run(f"{config.name}-{name}", {}):
        result = tune.search(config, data, settings, home / name, first)
    return result, cpu_seconds() - cpu


def cpu_seconds() -> float:
    """CPU time of this process, every thread (TensorFlow's too): far less moved than wall time by what
    else runs on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(result, cpu: float) -> dict:
    from optuna.trial import TrialState

    default = result.study.trials[0]
    return {
        "trials": len(result.trials()),
        "complete": len(result.trials(TrialState.COMPLETE)),
        "pruned": len(result.trials(TrialState.PRUNED)),
        "rungs_scored": sum(len(t.intermediate_values) for t in result.trials()),
        "epochs_trained": result.epochs_trained,
        "wall_seconds": round(result.seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "best_validation_score": result.best.value,
        "best_trial": result.best.number,
        "best_params": result.best.params,
        "trial0_params": default.params,
        "trial0_score": default.value if default.state == TrialState.COMPLETE else None,
        "final_scores": {t.number: t.value for t in result.trials(TrialState.COMPLETE)},
    }


def report(args, data, results: dict[str, dict]) -> None:
    full = results["full budget"]
    metric = f"validation {full['metric']}"
    print(
        f"\n{args.config.name} on {data.source}: {len(data.examples)} examples, {args.trials} trials, ",
        end="",
    )
    print(f"epoch cap {args.epochs}")
    head = f"{'study':<12} {'trials':>6} {'complete':>8} {'pruned':>6} {'rungs':>9} {'epochs':>7}"
    print(f"{head} {'wall s':>8} {'cpu s':>8}  best {metric}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['trials']:>6} {r['complete']:>8} {r['pruned']:>6} {r['rungs_scored']:>9} "
            f"{r['epochs_trained']:>7} {r['wall_seconds']:>8.1f} {r['cpu_seconds']:>8.1f}  "
            f"{r['best_validation_score']:.4f} (trial {r['best_trial']})"
        )
    if "pruning" in results:
        pruned = results["pruning"]
        ratio = {k: pruned[k] / full[k] for k in ("epochs_trained", "wall_seconds", "cpu_seconds")}
        print(
            "ratios pruning / full budget (same trials, this run): "
            f"epochs trained {ratio['epochs_trained']:.2f}, wall time {ratio['wall_seconds']:.2f}, "
            f"CPU time {ratio['cpu_seconds']:.2f}, "
            f"best {metric} {pruned['best_validation_score'] / full['best_validation_score']:.4f}"
        )
        same = {n: (v, full["final_scores"].get(n)) for n, v in pruned["final_scores"].items()}
        print(
            "trials that completed in both studies, final validation score (pruning, full budget): "
            + ", ".join(f"trial {n} {a:.4f} {b:.4f}" for n, (a, b) in same.items())
        )
    best, default = full["best_validation_score"], full["trial0_score"]
    print(
        f"search example: default config (trial 0, {full['trial0_params']}) {metric} {default:.4f}; ", end=""
    )
    print(f"best trial {full['best_trial']} {best:.4f} ({best - default:+.4f}) {full['best_params']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore")
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("nlu_mlflow").setLevel(logging.INFO)
    from nlu_mlflow.rasa import pipelines, runtime
    from nlu_mlflow.tracking import runs

    runtime.quiet_rasa()
    config = pipelines.load(args.config, args.epochs, args.seed)
    data = load_data(args)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        home = Path(tmp)
        runs.configure(runs.default_tracking_uri(home), "bench-search", home)
        full, cpu = run_study(args, config, data, home, pruning=False, first=None)
        results["full budget"] = {**summary(full, cpu), "metric": full.spec.metric}
        if not args.example:
            same = [t.params for t in sorted(full.trials(), key=lambda t: t.number)]
            results["pruning"] = {
                **summary(*run_study(args, config, data, home, True, same)),
                "metric": full.spec.metric,
            }
    report(args, data, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2)
    )
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
