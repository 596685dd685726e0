"""Cross-validate one pipeline on one data set and log it to MLflow (one run: means, stds, folds).

    .venv/bin/python scripts/cv_example.py                        # logreg_crf, 3 folds, financial-demo
    .venv/bin/python scripts/cv_example.py --config configs/diet.yml --k 5 --epochs 20 \\
        --data ../shared/datasets/financial-demo/train.yml --tracking-uri sqlite:///mlruns.db

Without --tracking-uri the run goes to a throw-away store in a temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import mlflow

from nlu_mlflow import constants as c
from nlu_mlflow.decide import crossval, validation
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa import runtime as rasa_runtime
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.tracking import runs as tracking
from nlu_mlflow.workflow.crossval import cross_validate as cross_validate_config

ROOT = Path(__file__).resolve().parents[1]
FINANCIAL_DEMO = ROOT.parent / "shared" / "datasets" / "financial-demo" / "train.yml"


def cross_validate(args: argparse.Namespace, store: Path) -> crossval.CVResult:
    data = load_nlu(args.data)
    # financial-demo has one text under two intents: accepted here, as --allow-conflicts does
    problems = validation.check_training_data(
        data.view, c.DEFAULT_MIN_EXAMPLES_PER_INTENT, allow_conflicts=True
    )
    if problems:
        raise InputError(problems)
    config = pipelines.load(args.config, args.epochs, args.seed)
    rasa_runtime.quiet_rasa()
    uri = args.tracking_uri or tracking.default_tracking_uri(store)
    tracking.configure(uri, args.experiment, store)
    with mlflow.start_run(run_name=config.name) as run:
        tracking.set_tags({c.TAG_CONFIG: config.name})
        tracking.log_params({"config_file": config.path.name, "train_digest": data.digest, "data": args.data})
        result = cross_validate_config(config, data, args.k, args.seed, None, store / "work")
        tracking.log_cross_validation(result)
    print(f"{config.name}: {args.k}-fold cross-validation of {args.data} (seed {args.seed})")
    logged = mlflow.get_run(run.info.run_id).data.metrics
    means = sum(k.endswith(crossval.MEAN_SUFFIX) for k in logged)
    stds = sum(k.endswith(crossval.STD_SUFFIX) for k in logged)
    temporary = "" if args.tracking_uri else " (a temporary store)"
    print(f"run {run.info.run_id} in {uri}{temporary}: {means} means and {stds} stds logged")
    return result


def report(result: crossval.CVResult) -> None:
    print(f"{'metric':<22} {'mean':>8} {'std':>8}   per fold")
    for name in c.KEY_METRICS:
        if name + crossval.MEAN_SUFFIX not in result.summary:
            continue
        folds = "  ".join(f"{fold[name]:.4f}" for fold in result.per_fold)
        mean, std = result.summary[name + crossval.MEAN_SUFFIX], result.summary[name + crossval.STD_SUFFIX]
        print(f"{name:<22} {mean:>8.4f} {std:>8.4f}   {folds}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=FINANCIAL_DEMO)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "logreg_crf.yml")
    parser.add_argument("--k", type=int, default=3, help="number of folds")
    parser.add_argument("--seed", type=int, default=c.DEFAULT_SEED)
    parser.add_argument("--epochs", type=int, default=None, help="cap on training epochs")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--experiment", default="nlu-mlflow-cv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-cv-") as tmp:
        try:
            result = cross_validate(args, Path(tmp))
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
