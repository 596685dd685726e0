"""The production model, re-scored on the workflow's own test data, critical suite and test conversations.

Scores are cached as an artifact of the run that measured them and referenced from the version
(``tracking.score_cache``), keyed by the digests of what they were measured on, so an unchanged champion is
not scored twice. A champion that can no longer be loaded or scored stops the decision: production stays as
it is, and the run says why (``ChampionUnusable``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide import score_record
from nlu_mlflow.decide.summary import now_iso
from nlu_mlflow.rasa import scoring
from nlu_mlflow.rasa.project import StagedTests
from nlu_mlflow.tracking import models, registry, score_cache
from nlu_mlflow.tracking.errors import AccessError
from nlu_mlflow.workflow.inputs import Inputs

logger = logging.getLogger("nlu_mlflow")


class ChampionUnusable(RuntimeError):
    """The production version cannot be loaded or scored (deleted artifacts, an archive from another Rasa)."""

    def __init__(self, version: registry.Version, reason: str):
        super().__init__(
            f"production version {version.version} of '{version.name}' cannot be scored ({reason}); "
            "production stays as it is and no new version was registered: restore its artifacts, retrain it "
            "with this Rasa, or promote another version by hand (`nlu-mlflow promote VERSION --force`)"
        )
        self.version = version
        self.reason = reason


@dataclass(frozen=True, eq=False)
class ChampionScores:
    version: registry.Version
    metrics: dict[str, float]
    correct: dict[str, bool]
    cached: bool
    scores: scoring.ModelScores | None = None  # None when taken from the cache
    intent_support: dict[str, int] | None = None


def cache_key(inputs: Inputs) -> str:
    d = inputs.score_digests
    assert d["test"] is not None, "the test data always has a digest"
    return score_cache.cache_key(d["test"], d["critical"], d["conversations"])


def rescore(
    version: registry.Version, inputs: Inputs, work: Path, tests: StagedTests | None, run_id: str
) -> ChampionScores:
    """The champion's scores on this run's inputs (from its cache, or measured and cached in ``run_id``)."""
    key = cache_key(inputs)
    cached = score_cache.load(version, key)
    if cached is not None:
        logger.info("production version %s: scores for this test data found on the version", version.version)
        rescored = score_record.scores(cached)
        return ChampionScores(version, dict(rescored.metrics), dict(rescored.correct or {}), True)
    logger.info("production version %s: re-evaluating on the same test data", version.version)
    try:
        archive = models.archive_path(version.uri, work / "download")
        extractors = [x for x in version.tags.get(c.TAG_ENTITY_EXTRACTORS, "").split(",") if x]
        scores = scoring.score_archive(
            archive, inputs.test, inputs.suite, extractors, work / "reports", tests, inputs.live_test
        )
    except AccessError:
        raise
    except Exception as error:  # whatever stops a load: missing artifacts, a foreign archive, Rasa's errors
        raise ChampionUnusable(version, f"{type(error).__name__}: {error}") from None
    cache(version, inputs, scores.metrics, scores.correct, run_id)
    return ChampionScores(version, scores.metrics, scores.correct, False, scores)


def cache(
    version: registry.Version, inputs: Inputs, metrics: dict, correct: dict[str, bool], run_id: str
) -> None:
    """Store a version's scores as an artifact of ``run_id`` and point the version at them."""
    record = score_record.record(metrics, correct, inputs.intent_support, inputs.score_digests, now_iso())
    key = cache_key(inputs)
    score_cache.tag_version(version, key, score_cache.save(run_id, key, record))
