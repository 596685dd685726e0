"""The score cache: a model version's scores on a given test set and critical suite, kept on the version.

Keyed by the digests of the test data and the suite, so an unchanged champion is not scored twice
and a manual ``promote`` compares two versions on scores measured on the same data.
"""

from __future__ import annotations

import json

from nlu_mlflow.tracking import registry
from nlu_mlflow.tracking.errors import translated
from nlu_mlflow.tracking.registry import Version

SCORES_TAG_PREFIX = "nlu_mlflow.scores."


def scores_cache_key(test_digest: str, critical_digest: str | None) -> str:
    return f"{SCORES_TAG_PREFIX}{test_digest}.{critical_digest or 'none'}"


def cached_scores(version: Version, key: str) -> dict | None:
    raw = version.tags.get(key)
    return json.loads(raw) if raw else None


@translated()
def cache_scores(version: Version, key: str, scores: dict) -> None:
    registry.set_version_tags(version.name, version.version, {key: json.dumps(scores, sort_keys=True)})
