"""Write decision records: the parent run's tags, ``decision.json``, tables and description, the version tags
and description, and the small run a manual move of production leaves behind.

The writers are handed what they write (``decide.summary`` builds it); they decide nothing. The decision is
written before production moves (``write_decision``), and marked as carried out after (``write_moved``), so
a crash in between leaves a record of what was decided and that it did not happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide.redact import redact_text
from nlu_mlflow.tracking import registry, runs
from nlu_mlflow.tracking.errors import Needs, translated


@dataclass(frozen=True, eq=False)
class DecisionRecord:
    """What the parent run and the model versions say about one decision, before production moves."""

    model_name: str
    summary: dict
    run_tags: dict[str, str]
    version_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> tags
    version: str | None = None  # the registered candidate
    version_description: str | None = None


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What the workflow's parent run says once it is done."""

    summary: dict
    table: pd.DataFrame
    run_tags: dict[str, str]
    description: str
    run_name: str
    comparison_md: str | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    champion_reports: Path | None = None  # the re-scored champion's Rasa reports


@translated()
def write_decision(record: DecisionRecord) -> None:
    """Into the active (parent) run and onto the versions it names: the decision and its reasons."""
    runs.log_json(record.summary, c.ARTIFACT_DECISION)
    runs.set_tags(record.run_tags)
    for version, tags in record.version_tags.items():
        registry.set_version_tags(record.model_name, version, tags)
    if record.version and record.version_description:
        describe_version(record.model_name, record.version, record.version_description)


@translated()
def write_moved(
    model_name: str, summary: dict, version_tags: dict[str, dict[str, str]], run_tags: dict[str, str]
) -> None:
    """After production moved: ``decision.json`` and the run say so (``run_tags``: moved, when, replacing
    which version), the version says when."""
    runs.log_json(summary, c.ARTIFACT_DECISION)
    runs.set_tags(run_tags)
    for version, tags in version_tags.items():
        registry.set_version_tags(model_name, version, tags)


@translated()
def write_run(record: RunRecord) -> None:
    """The rest of the parent run's record: tables, the champion's scores, description and name."""
    runs.log_json(record.summary, c.ARTIFACT_DECISION)
    runs.log_table(record.table, "summary.json")
    if record.champion_metrics:
        runs.log_metrics({c.CHAMPION_METRIC_PREFIX + k: v for k, v in record.champion_metrics.items()})
    if record.champion_reports is not None:
        runs.log_artifacts(record.champion_reports, c.ARTIFACT_CHAMPION_REPORTS)
    runs.set_tags(record.run_tags)
    if record.comparison_md:
        runs.log_text(record.comparison_md, c.ARTIFACT_COMPARISON)
    runs.set_description(record.description)
    runs.set_run_name(record.run_name)


@translated()
def write_failure(summary: dict, description: str, run_name: str) -> None:
    runs.log_json(summary, c.ARTIFACT_DECISION)
    runs.set_tags(
        {
            c.TAG_DECISION: c.DECISION_FAILED,
            c.TAG_DECISION_REASONS: summary["error"][: c.MAX_TAG_LENGTH],
            c.TAG_ERROR: summary["error"][: c.MAX_TAG_LENGTH],
        }
    )
    runs.set_description(description)
    runs.set_run_name(run_name)


@translated()
def describe_version(name: str, version: str, text: str) -> None:
    with translated(Needs.on_model(f"describe version {version}", name)):
        mlflow.MlflowClient().update_model_version(name, str(version), description=redact_text(text))


@translated()
def write_manual_move(
    name: str, label: str, version_tags: dict[str, dict[str, str]], record: dict, reasons: str
) -> str:
    """Before a manual move: tag the versions and leave a small run (role ``manual``) with its
    ``decision.json``; returns the run's id (``mark_manual_moved`` marks it once the move is done)."""
    for version, tags in version_tags.items():
        registry.set_version_tags(name, version, tags)
    with mlflow.start_run(run_name=f"{label} {name} v{record['version']}") as run:
        runs.set_tags(  # the run writers redact, as for every other record
            {
                c.TAG_ROLE: c.ROLE_MANUAL,
                c.TAG_DECISION: label,
                c.TAG_DECISION_REASONS: reasons[: c.MAX_TAG_LENGTH],
                c.TAG_MODEL_NAME: name,
                c.TAG_CANDIDATE_VERSION: str(record["version"]),
                **({c.TAG_CHAMPION_VERSION: str(record["replaced"])} if record.get("replaced") else {}),
            }
        )
        runs.log_json(record, c.ARTIFACT_DECISION)
    return run.info.run_id


@translated()
def mark_manual_moved(
    run_id: str, name: str, version: str, record: dict, at: str, replaced: str | None = None
) -> None:
    """After a manual move: the run says it moved, when and which version it replaced; the version when."""
    client = mlflow.MlflowClient()
    moved = {"production_moved": True, "moved_at": at, "replaced_version": replaced}
    client.log_dict(run_id, {**record, **moved}, c.ARTIFACT_DECISION)
    tags = {c.TAG_PRODUCTION_MOVED: "true", c.TAG_MOVED_AT: at}
    for key, value in {**tags, **({c.TAG_REPLACED_VERSION: replaced} if replaced else {})}.items():
        client.set_tag(run_id, key, value)
    registry.set_version_tags(name, version, {c.TAG_PROMOTED_AT: at})
