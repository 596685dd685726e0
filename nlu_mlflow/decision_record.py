"""Record why a model did or did not go live: run tags, decision.json, version tags, comparison.md."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow import crossval, registry, report, tracking

logger = logging.getLogger("nlu_mlflow")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def decision_label(outcome) -> str:
    if outcome.decision is None:
        return c.DECISION_NONE
    return c.DECISION_PROMOTED if outcome.promoted else c.DECISION_KEPT


def summary(result, settings) -> dict:
    """The JSON summary written for cron and CI (also logged as decision.json)."""
    outcome, best = result.outcome, result.best
    return {
        "decision": decision_label(outcome),
        "message": outcome.message,
        "run_id": result.run_id,
        "tracking_uri": result.tracking_uri,
        "model_name": settings.model_name,
        "candidate": None
        if best is None
        else {
            "config": best.name,
            "run_id": best.run_id,
            "version": outcome.version.version if outcome.version else None,
            "metrics": {k: best.metrics.get(k) for k in c.KEY_METRICS},
        },
        "champion": None
        if outcome.champion is None
        else {
            "version": outcome.champion.version.version,
            "cached_scores": outcome.champion.cached,
            "metrics": {k: outcome.champion.metrics.get(k) for k in c.KEY_METRICS},
        },
        "policy": settings.policy.to_dict(),
        "checks": outcome.decision.to_dict()["checks"] if outcome.decision else [],
        "deltas": dict(outcome.decision.deltas) if outcome.decision else {},
        "selection": result.selection.reasons,
        "decided_at": now_iso(),
    }


def comparison(result, inputs) -> str:
    outcome, best = result.outcome, result.best
    champ = outcome.champion
    lines = [outcome.message] + (outcome.decision.reasons if outcome.decision else [])
    title = f"Candidate {best.name} vs production" + (
        f" version {champ.version.version}" if champ else " (none yet)"
    )
    return report.comparison_markdown(
        title,
        best.metrics,
        champ.metrics if champ else None,
        lines,
        inputs.intent_support,
        best.scores.critical.table if best.scores.critical else None,
        champ.scores.critical.table if champ and champ.scores and champ.scores.critical else None,
    )


def record_run(result, settings, inputs) -> dict:
    """Everything the workflow's parent run and the model versions must say about the decision."""
    outcome = result.outcome
    data = summary(result, settings)
    tracking.log_json(data, c.ARTIFACT_DECISION)
    tracking.log_table(summary_table(result, settings.primary_metric), "summary.json")
    reasons = "; ".join(outcome.decision.reasons) if outcome.decision else outcome.message
    tags = {c.TAG_DECISION: data["decision"], c.TAG_DECISION_REASONS: reasons[: c.MAX_TAG_LENGTH]}
    if outcome.version:
        tags[c.TAG_CANDIDATE_VERSION] = outcome.version.version
    if outcome.champion:
        tags[c.TAG_CHAMPION_VERSION] = outcome.champion.version.version
        _log_champion(outcome.champion)
    tracking.set_tags(tags)
    markdown = comparison(result, inputs) if result.best is not None else None
    if markdown:
        tracking.log_text(markdown, c.ARTIFACT_COMPARISON)
    if outcome.version:
        _tag_versions(result, settings, reasons)
    tracking.set_description(describe(result, settings))
    _write_files(settings, data, markdown)
    return data


def _log_champion(champ) -> None:
    tracking.log_metrics({c.CHAMPION_METRIC_PREFIX + k: v for k, v in champ.metrics.items()})
    if champ.scores is not None:
        tracking.log_artifacts(champ.scores.evaluation.report_dir, c.ARTIFACT_CHAMPION_REPORTS)


def _tag_versions(result, settings, reasons: str) -> None:
    outcome = result.outcome
    label = decision_label(outcome)
    deltas = outcome.decision.deltas if outcome.decision else {}
    candidate_tags = {
        c.TAG_DECISION: label,
        c.TAG_DECISION_REASONS: reasons[: c.MAX_TAG_LENGTH],
        c.TAG_DECISION_RUN: result.run_id,
        **{
            f"nlu_mlflow.delta.{k}": f"{v:+.6f}"
            for k, v in deltas.items()
            if not k.startswith(c.INTENT_F1_PREFIX)
        },
    }
    if outcome.champion:
        candidate_tags[c.TAG_CHAMPION_VERSION] = outcome.champion.version.version
    if outcome.promoted:
        candidate_tags[c.TAG_PROMOTED_AT] = now_iso()
    registry.set_version_tags(settings.model_name, outcome.version.version, candidate_tags)
    if outcome.champion:
        champion_tags = {
            "nlu_mlflow.last_challenge_run_id": result.run_id,
            "nlu_mlflow.last_challenge": f"{'replaced by' if outcome.promoted else 'kept against'} "
            f"version {outcome.version.version}",
        }
        registry.set_version_tags(settings.model_name, outcome.champion.version.version, champion_tags)


def describe(result, settings) -> str:
    """Markdown shown as the parent run's description in the MLflow UI."""
    best = result.selection.best
    test = settings.test_data or f"{settings.test_fraction:.0%} split of the data"
    lines = [
        f"**Data**: `{settings.data}`; **test**: `{test}`",
        f"**Configs**: {', '.join(x.name for x in result.candidates or result.cross_validation)}",
        f"**Best** ({settings.primary_metric}): {best or 'none'}",
        f"**Decision**: {result.outcome.message}",
    ]
    if settings.cv_folds:
        lines.insert(
            1, f"**Cross-validation**: {settings.cv_folds} folds of the training data, seed {settings.seed}"
        )
    reasons = result.outcome.decision.reasons if result.outcome.decision else []
    return "\n\n".join(lines) + ("\n\n" + "\n".join(f"- {r}" for r in reasons) if reasons else "")


def _write_files(settings, data: dict, markdown: str | None) -> None:
    if settings.summary_json:
        Path(settings.summary_json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    if settings.report_md:
        Path(settings.report_md).write_text(markdown or f"# nlu-mlflow\n\n{data['message']}\n")


def summary_table(result, primary_metric: str) -> pd.DataFrame:
    """One row per pipeline with its key metrics; ``best`` marks the chosen one."""
    if result.cross_validation:
        return crossval.summary_frame(result.cross_validation)
    columns = [primary_metric] + [k for k in c.KEY_METRICS if k != primary_metric]
    rows = [
        {
            "config": x.name,
            "best": "*" if x.name == result.selection.best else "",
            **{k: x.metrics.get(k) for k in columns},
        }
        for x in result.candidates
    ]
    return pd.DataFrame(rows).dropna(axis=1, how="all")
