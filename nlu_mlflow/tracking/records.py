"""Write decision records: the parent run's tags, ``decision.json``, tables and description, the version tags,
and the small run a manual move of production leaves behind.

The writers are handed what they write (``decide.summary`` builds it); they decide nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.tracking import registry, runs
from nlu_mlflow.tracking.errors import translated

ROLE_MANUAL = "manual"


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What the workflow's parent run and the model versions say about one decision."""

    model_name: str
    summary: dict
    table: pd.DataFrame
    run_tags: dict[str, str]
    description: str
    comparison_md: str | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    champion_reports: Path | None = None  # the re-scored champion's Rasa reports
    version_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> tags


@translated()
def write_run(record: RunRecord) -> None:
    """Write ``record`` into the active (parent) run and onto the versions it names."""
    runs.log_json(record.summary, c.ARTIFACT_DECISION)
    runs.log_table(record.table, "summary.json")
    if record.champion_metrics:
        runs.log_metrics({c.CHAMPION_METRIC_PREFIX + k: v for k, v in record.champion_metrics.items()})
    if record.champion_reports is not None:
        runs.log_artifacts(record.champion_reports, c.ARTIFACT_CHAMPION_REPORTS)
    runs.set_tags(record.run_tags)
    if record.comparison_md:
        runs.log_text(record.comparison_md, c.ARTIFACT_COMPARISON)
    for version, tags in record.version_tags.items():
        registry.set_version_tags(record.model_name, version, tags)
    runs.set_description(record.description)


@translated()
def write_manual_move(
    name: str, label: str, version_tags: dict[str, dict[str, str]], record: dict, reasons: str
) -> None:
    """Tag the versions of a manual move; leave a small run (role ``manual``) with its ``decision.json``."""
    for version, tags in version_tags.items():
        registry.set_version_tags(name, version, tags)
    with mlflow.start_run(run_name=f"{label} {name} v{record['version']}"):
        runs.set_tags(  # the run writers redact, as for every other record
            {
                c.TAG_ROLE: ROLE_MANUAL,
                c.TAG_DECISION: label,
                c.TAG_DECISION_REASONS: reasons[: c.MAX_TAG_LENGTH],
            }
        )
        runs.log_json(record, c.ARTIFACT_DECISION)
