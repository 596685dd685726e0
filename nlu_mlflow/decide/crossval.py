"""Cross-validation arithmetic (pure): which folds are possible, per-fold records, mean and std.

A cross-validated score says how much a pipeline's numbers move with the data it happens to see;
it never decides a promotion on its own (a ``--cv-folds`` workflow run registers nothing). Splitting
the data is ``rasa.data.stratified_folds``; training and scoring the folds ``workflow.crossval``;
logging them ``tracking.runs.log_cross_validation``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide.validation import Examples

MEAN_SUFFIX = "_mean"  # intent_f1_weighted_mean
STD_SUFFIX = "_std"  # intent_f1_weighted_std (population std, ddof=0)
FOLD_SUFFIX = "_fold"  # intent_f1_weighted_fold: one value per fold, step = fold index (0-based)
ARTIFACT_CV_FOLDS = "cv_folds.json"
PARAM_FOLDS = "cv_folds"
PARAM_SEED = "cv_seed"


@dataclass(frozen=True)
class CVResult:
    """Cross-validation of one pipeline: the metrics of every fold and their mean and std."""

    name: str  # the config's name, as Candidate.name
    k: int
    seed: int
    per_fold: list[dict[str, float]]  # fold i (0-based) at index i
    summary: dict[str, float]  # aggregate(per_fold): <metric>_mean, <metric>_std
    fold_sizes: list[tuple[int, int]]  # (train examples, test examples) per fold

    def table(self) -> pd.DataFrame:
        """One row per fold: its size and its key and per-intent metrics."""
        rows = [
            {"fold": i, "train_examples": n_train, "test_examples": n_test, **logged_metrics(metrics)}
            for i, (metrics, (n_train, n_test)) in enumerate(zip(self.per_fold, self.fold_sizes, strict=True))
        ]
        return pd.DataFrame(rows)


def fold_problems(data: Examples, k: int) -> list[str]:
    """Why ``data`` cannot be split into ``k`` stratified folds, one sentence each (empty when it can)."""
    if k < 2:
        return [f"--cv-folds {k}: cross-validation needs at least 2 folds, e.g. --cv-folds 5."]
    counts = Counter(e.intent for e in data.merged)
    return [
        f"{data.source}: intent '{intent}' has {n} example(s), fewer than --cv-folds {k}; "
        f"add {k - n} more or use fewer folds."
        for intent, n in sorted(counts.items(), key=lambda item: (item[1], item[0]))
        if n < k
    ]


def aggregate(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """``<name>_mean`` and ``<name>_std`` of every metric present in all folds.

    The std is the population standard deviation (ddof=0): the spread of these k folds, not an
    estimate for other splits; a single fold has std 0. A NaN in any fold gives NaN.
    """
    if not per_fold:
        return {}
    names = sorted(set.intersection(*(set(fold) for fold in per_fold)))
    result = {}
    for name in names:
        values = [float(fold[name]) for fold in per_fold]
        mean = sum(values) / len(values)
        result[name + MEAN_SUFFIX] = mean
        result[name + STD_SUFFIX] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return result


def summary_frame(results: list[CVResult]) -> pd.DataFrame:
    """One row per pipeline and key metric: its mean and std over the folds (the command's closing table)."""
    rows = [
        {
            "config": result.name,
            "metric": name,
            "mean": result.summary[name + MEAN_SUFFIX],
            "std": result.summary[name + STD_SUFFIX],
        }
        for result in results
        for name in c.KEY_METRICS
        if name + MEAN_SUFFIX in result.summary
    ]
    return pd.DataFrame(rows, columns=pd.Index(["config", "metric", "mean", "std"]))


def logged_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics cross-validation reports: the key metrics and the per-intent F1."""
    return {k: v for k, v in metrics.items() if k in c.KEY_METRICS or k.startswith(c.INTENT_F1_PREFIX)}
