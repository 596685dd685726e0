"""The production model, re-scored on the workflow's own test data and critical suite.

Scores are cached on the model version, keyed by the digests of the test data and the suite, so an
unchanged champion is not scored twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide.critical_suite import CriticalSuite
from nlu_mlflow.rasa import scoring
from nlu_mlflow.rasa.data import NluData
from nlu_mlflow.tracking import models, registry, score_cache

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True, eq=False)
class ChampionScores:
    version: registry.Version
    metrics: dict[str, float]
    correct: tuple[bool, ...]
    cached: bool
    scores: scoring.ModelScores | None = None  # None when taken from the cache


def rescore(
    version: registry.Version, test: NluData, suite: CriticalSuite | None, work: Path
) -> ChampionScores:
    key = score_cache.scores_cache_key(test.digest, suite.digest if suite else None)
    cached = score_cache.cached_scores(version, key)
    if cached is not None:
        logger.info("production version %s: scores for this test data found on the version", version.version)
        return ChampionScores(version, cached["metrics"], tuple(c == "1" for c in cached["correct"]), True)
    logger.info("production version %s: re-evaluating on the same test data", version.version)
    archive = models.archive_path(version.uri, work / "download")
    extractors = [x for x in version.tags.get(c.TAG_ENTITY_EXTRACTORS, "").split(",") if x]
    scores = scoring.score_archive(archive, test, suite, extractors, work / "reports")
    cache(version, test, suite, scores.metrics, scores.correct)
    return ChampionScores(version, scores.metrics, scores.correct, False, scores)


def cache(version: registry.Version, test: NluData, suite, metrics: dict, correct: tuple[bool, ...]) -> None:
    """Store a version's scores on it, keyed by the test data and suite they were measured on."""
    key = score_cache.scores_cache_key(test.digest, suite.digest if suite else None)
    score_cache.cache_scores(version, key, {"metrics": metrics, "correct": "".join("01"[x] for x in correct)})
