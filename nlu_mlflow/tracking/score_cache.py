"""The score cache: a model version's scores on a given test set, critical suite and test conversations.

The scores (metrics, per-example correctness keyed by example identity, per-intent test support) are a JSON
artifact of the run that measured them (``scores/<key>.json``): the candidate's own run, or the workflow run
that re-scored the production model. The version carries only a short tag pointing at it
(``nlu_mlflow.scores.<test>.<critical>[.<conversations>]`` = ``{"run_id", "path", "at"}``), so the version
page in the MLflow UI stays readable and an unchanged champion is not scored twice. ``at`` says when the
scores were measured: a manual ``promote`` compares two versions on the scores both have, newest first.
"""

from __future__ import annotations

import json

import mlflow

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import registry
from nlu_mlflow.tracking.errors import translated
from nlu_mlflow.tracking.registry import Version

SCORES_TAG_PREFIX = c.TAG_SCORES_PREFIX
SCORES_ARTIFACT_DIR = "scores"


def cache_key(test_digest: str, critical_digest: str | None, conversations_digest: str | None = None) -> str:
    """The version tag naming scores measured on these inputs."""
    parts = [test_digest, critical_digest or "none"] + (
        [conversations_digest] if conversations_digest else []
    )
    return SCORES_TAG_PREFIX + ".".join(parts)


def artifact_file(key: str) -> str:
    return f"{SCORES_ARTIFACT_DIR}/{key.removeprefix(SCORES_TAG_PREFIX)}.json"


@translated()
def save(run_id: str, key: str, record: dict) -> str:
    """Log ``record`` (see ``decide.score_record``) into run ``run_id``; returns the reference to tag with."""
    path = artifact_file(key)
    mlflow.MlflowClient().log_dict(run_id, record, path)
    return json.dumps({"run_id": run_id, "path": path, "at": record.get("scored_at")}, sort_keys=True)


@translated()
def tag_version(version: Version, key: str, reference: str) -> None:
    registry.set_version_tags(version.name, version.version, {key: reference})


def references(version: Version) -> dict[str, dict]:
    """The version's cached scores: key -> ``{"run_id", "path", "at"}``."""
    found = {}
    for key, value in version.tags.items():
        if key.startswith(SCORES_TAG_PREFIX):
            try:
                found[key] = json.loads(value)
            except ValueError:
                continue
    return found


@translated()
def load(version: Version, key: str) -> dict | None:
    """The scores cached on ``version`` under ``key``, or None."""
    reference = references(version).get(key)
    if reference is None:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{reference['run_id']}/{reference['path']}")
