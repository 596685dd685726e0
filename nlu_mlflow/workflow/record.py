"""Record why a model did or did not go live: gather the facts of a run's result, have ``decide.summary``
build the record and ``tracking.records`` write it; the summary JSON and the markdown report go to files.

Three moments: ``record_decision`` before production moves, ``record_moved`` right after, ``record_run``
when the run is done (``record_failure`` when it stopped before deciding).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nlu_mlflow.decide import crossval, report, summary
from nlu_mlflow.decide.redact import redact, redact_text
from nlu_mlflow.tracking import records, runs
from nlu_mlflow.workflow import inbox
from nlu_mlflow.workflow.inputs import Inputs
from nlu_mlflow.workflow.settings import WorkflowSettings


def facts(result, settings: WorkflowSettings, moved: bool | None = None) -> summary.RunFacts:
    """The plain values of a ``WorkflowResult`` that the decision record is built from."""
    outcome, best = result.outcome, result.best
    candidate = None
    if best is not None:
        version = outcome.version.version if outcome.version else None
        candidate = summary.CandidateFacts(best.name, best.run_id, version, best.metrics)
    champion = None
    if outcome.champion is not None:
        champ = outcome.champion
        champion = summary.ChampionFacts(champ.version.version, champ.cached, champ.metrics)
    return summary.RunFacts(
        run_id=result.run_id,
        tracking_uri=result.tracking_uri,
        model_name=settings.model_name,
        message=outcome.message,
        decision=outcome.decision,
        promoted=outcome.promoted,
        candidate=candidate,
        champion=champion,
        policy=settings.policy.to_dict(),
        selection_reasons=result.selection.reasons,
        failed=[(x.name, x.reason) for x in result.failed],
        moved=outcome.promoted if moved is None else moved,
        rechecks=outcome.rechecks,
        moved_at=outcome.moved_at,
        replaced=outcome.replaced,
    )


def record_decision(result, settings: WorkflowSettings) -> None:
    """Before production moves: ``decision.json``, the run's decision tags, the versions' tags and the new
    version's description (the receiver's message reads them when the alias event arrives)."""
    run_facts = facts(result, settings, moved=False)
    version = run_facts.candidate.version if run_facts.candidate else None
    records.write_decision(
        records.DecisionRecord(
            model_name=settings.model_name,
            summary=summary.summary(run_facts),
            run_tags=summary.run_tags(run_facts),
            version_tags=summary.version_tags(run_facts),
            version=version,
            version_description=summary.version_description(run_facts, settings.primary_metric)
            if version
            else None,
        )
    )


def record_moved(result, settings: WorkflowSettings) -> None:
    """After production moved: when, and which version it replaced (``moved_at``, ``replaced``)."""
    run_facts = facts(result, settings, moved=True)
    tags = summary.version_tags(run_facts)
    candidate = run_facts.candidate
    assert candidate is not None and candidate.version is not None, "production moved to a registered version"
    promoted = {candidate.version: dict(tags[candidate.version])}
    records.write_moved(
        settings.model_name, summary.summary(run_facts), promoted, summary.moved_tags(run_facts)
    )


def record_run(result, settings: WorkflowSettings, inputs: Inputs) -> dict:
    """Everything the workflow's parent run must say once it is done."""
    run_facts = facts(result, settings)
    data = summary.summary(run_facts)
    markdown = comparison(result, inputs) if result.best is not None else None
    champ = result.outcome.champion
    records.write_run(
        records.RunRecord(
            summary=data,
            table=summary_table(result, settings.primary_metric),
            run_tags=summary.run_tags(run_facts),
            description=describe(result, settings),
            run_name=summary.run_name(run_facts, data["decided_at"][:10]),
            comparison_md=markdown,
            champion_metrics=dict(champ.metrics) if champ else {},
            champion_reports=champ.scores.evaluation.report_dir if champ and champ.scores else None,
        )
    )
    write_files(settings, data, markdown)
    return data


def record_failure(settings: WorkflowSettings, error: str) -> dict:
    """A run that stopped before it decided: why, on the parent run and in the files."""
    # the active run is the parent; its id goes into the record
    data = summary.failure(runs.active_run_id(), runs.tracking_uri(), settings.model_name, error)
    records.write_failure(
        data, f"**Failed**: {error}", summary.run_name(None, data["decided_at"][:10], error)
    )
    write_files(settings, data, None)
    return data


def comparison(result, inputs: Inputs) -> str:
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
        best.critical_table,
        champ.scores.critical.table if champ and champ.scores and champ.scores.critical else None,
    )


def describe(result, settings: WorkflowSettings) -> str:
    """Markdown shown as the parent run's description in the MLflow UI."""
    cv_note = None
    if settings.cv_folds:
        cv_note = f"{settings.cv_folds} folds of the training data, seed {settings.seed}"
    reasons = result.outcome.decision.reasons if result.outcome.decision else []
    reasons = reasons + [f"candidate {x.name} FAILED: {x.reason}" for x in result.failed]
    return summary.describe(
        data=settings.project or settings.data,
        test=settings.test_data or f"{settings.test_fraction:.0%} split of the data",
        configs=[x.name for x in result.candidates or result.cross_validation]
        + [x.name for x in result.failed],
        primary_metric=settings.primary_metric,
        best=result.selection.best,
        message=result.outcome.message,
        reasons=reasons,
        cv_note=cv_note,
    )


def summary_table(result, primary_metric: str) -> pd.DataFrame:
    """One row per config with its key metrics; ``best`` marks the chosen one."""
    if result.cross_validation:
        return crossval.summary_frame(result.cross_validation)
    rows = [(x.name, x.metrics) for x in result.candidates] + [(x.name, {}) for x in result.failed]
    table = summary.summary_table(rows, result.selection.best, primary_metric)
    if result.failed:
        failed = {x.name for x in result.failed}
        table.insert(
            2,
            "status",
            pd.Series(["FAILED" if n in failed else "ok" for n in table["config"]], index=table.index),
        )
    return table


def write_files(settings: WorkflowSettings, data: dict, markdown: str | None) -> None:
    if settings.summary_json:
        counts = inbox.nightly_counts(None, settings.tracking_uri)  # what waits for a person (no text)
        write_summary(settings.summary_json, data | ({"inbox": counts.to_dict()} if counts else {}))
    if settings.report_md:
        Path(settings.report_md).write_text(redact_text(markdown or f"# nlu-mlflow\n\n{data['message']}\n"))


def write_summary(path: Path | str, data: dict) -> None:
    Path(path).write_text(json.dumps(redact(data), indent=2, default=str) + "\n")
