"""K-fold cross-validation of one pipeline: train and score it on every fold, with the workflow's own steps.

The folds come from ``rasa.data.stratified_folds``, training and scoring from ``rasa.training`` and
``rasa.scoring`` (as for a candidate), the arithmetic from ``decide.crossval``; nothing here touches MLflow.
"""

from __future__ import annotations

from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide.critical_suite import CriticalSuite
from nlu_mlflow.decide.crossval import CVResult, aggregate
from nlu_mlflow.rasa import pipelines, scoring, training
from nlu_mlflow.rasa.data import NluData, stratified_folds


def cross_validate(
    config: pipelines.PipelineConfig,
    data: NluData,
    k: int,
    seed: int,
    suite: CriticalSuite | None,
    work: Path,
) -> CVResult:
    """Train and score ``config`` once per fold (fold ``i`` works in ``work/fold-i``)."""
    pairs = stratified_folds(data, k, seed)
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
