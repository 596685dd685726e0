"""K-fold cross-validation of one pipeline: seeded stratified folds, per-fold scores, mean and std.

A cross-validated score says how much a pipeline's numbers move with the data it happens to see;
it never decides a promotion on its own (a ``--cv-folds`` workflow run registers nothing).
``folds`` and ``aggregate`` are pure; ``cross_validate`` trains and scores with the same steps as the
workflow (``training.train``, ``scoring.score_archive``) and touches no MLflow; ``log_cv`` logs a
result into the active run through ``tracking``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow import pipelines, scoring, tracking, training
from nlu_mlflow.critical import CriticalSuite
from nlu_mlflow.data import NluData
from nlu_mlflow.errors import InputError

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


def folds(data: NluData, k: int, seed: int) -> list[tuple[NluData, NluData]]:
    """``k`` (train, test) pairs: stratified on the intent, shuffled with ``seed``, so the same data,
    ``k`` and ``seed`` always give the same folds. Every example is in exactly one test fold.

    Raises ``InputError`` when ``k`` < 2 or an intent has fewer than ``k`` examples.
    """
    from sklearn.model_selection import StratifiedKFold

    problems = fold_problems(data, k)
    if problems:
        raise InputError(problems)
    examples = data.examples
    intents = [m.get("intent") for m in examples]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = []
    for i, (train_idx, test_idx) in enumerate(splitter.split([[0]] * len(examples), intents)):
        label = f"{data.source} (cv fold {i}, k={k}, seed {seed})"
        train = _subset(data, [examples[j] for j in train_idx], label + " train")
        test = _subset(data, [examples[j] for j in test_idx], label + " test")
        pairs.append((train, test))
    return pairs


def fold_problems(data: NluData, k: int) -> list[str]:
    """Why ``data`` cannot be split into ``k`` stratified folds, one sentence each (empty when it can)."""
    if k < 2:
        return [f"--cv-folds {k}: cross-validation needs at least 2 folds, e.g. --cv-folds 5."]
    counts = Counter(m.get("intent") for m in data.examples)
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


def cross_validate(
    config: pipelines.PipelineConfig,
    data: NluData,
    k: int,
    seed: int,
    suite: CriticalSuite | None,
    work: Path,
) -> CVResult:
    """Train and score ``config`` once per fold (fold ``i`` works in ``work/fold-i``)."""
    pairs = folds(data, k, seed)
    extractors = pipelines.entity_extractors(config)
    per_fold = []
    for i, (train, test) in enumerate(pairs):
        fold_dir = work / f"fold-{i}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        trained = training.train(config, train.to_yaml(fold_dir / "train.yml"), fold_dir)
        scores = scoring.score_archive(trained.archive, test, suite, extractors, fold_dir / "reports")
        per_fold.append(
            {
                **scores.metrics,
                c.TRAIN_SECONDS: trained.seconds,
                c.EVAL_SECONDS: scores.evaluation.seconds,
                c.MODEL_SIZE_MB: trained.size_mb,
            }
        )
    sizes = [(len(train.examples), len(test.examples)) for train, test in pairs]
    return CVResult(config.name, k, seed, per_fold, aggregate(per_fold), sizes)


def log_cv(result: CVResult) -> None:
    """Log a cross-validation into the active run: ``<metric>_mean`` / ``<metric>_std`` for the key
    and per-intent metrics, each fold's value as step ``i`` of ``<metric>_fold``, the per-fold table
    ``cv_folds.json`` and the params ``cv_folds`` / ``cv_seed``."""
    tracking.log_params({PARAM_FOLDS: result.k, PARAM_SEED: result.seed})
    names = sorted(logged_metrics(result.per_fold[0]) if result.per_fold else [])
    names = [n for n in names if n + MEAN_SUFFIX in result.summary]
    tracking.log_metrics({n + s: result.summary[n + s] for n in names for s in (MEAN_SUFFIX, STD_SUFFIX)})
    for name in names:
        tracking.log_metric_steps(name + FOLD_SUFFIX, [fold[name] for fold in result.per_fold])
    tracking.log_table(result.table(), ARTIFACT_CV_FOLDS)


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
    return pd.DataFrame(rows, columns=["config", "metric", "mean", "std"])


def logged_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics cross-validation reports: the key metrics and the per-intent F1."""
    return {k: v for k, v in metrics.items() if k in c.KEY_METRICS or k.startswith(c.INTENT_F1_PREFIX)}


def _subset(data: NluData, examples: list, source: str) -> NluData:
    from rasa.shared.nlu.training_data.training_data import TrainingData

    whole = data.training_data
    subset = TrainingData(
        examples,
        entity_synonyms=whole.entity_synonyms,
        regex_features=whole.regex_features,
        lookup_tables=whole.lookup_tables,
    )
    return NluData(subset, source, data.parts)
