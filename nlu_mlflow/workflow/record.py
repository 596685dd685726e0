"""Record why a model did or did not go live: gather the facts of a run's result, have ``decide.summary``
build the record and ``tracking.records`` write it; the summary JSON and the markdown report go to files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nlu_mlflow.decide import crossval, report, summary
from nlu_mlflow.decide.redact import redact, redact_text
from nlu_mlflow.tracking import records
from nlu_mlflow.workflow.inputs import Inputs
from nlu_mlflow.workflow.settings import WorkflowSettings


def facts(result, settings: WorkflowSettings) -> summary.RunFacts:
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
    )


def record_run(result, settings: WorkflowSettings, inputs: Inputs) -> dict:
    """Everything the workflow's parent run and the model versions must say about the decision."""
    run_facts = facts(result, settings)
    data = summary.summary(run_facts)
    markdown = comparison(result, inputs) if result.best is not None else None
    champ = result.outcome.champion
    records.write_run(
        records.RunRecord(
            model_name=settings.model_name,
            summary=data,
            table=summary_table(result, settings.primary_metric),
            run_tags=summary.run_tags(run_facts),
            description=describe(result, settings),
            comparison_md=markdown,
            champion_metrics=dict(champ.metrics) if champ else {},
            champion_reports=champ.scores.evaluation.report_dir if champ and champ.scores else None,
            version_tags=summary.version_tags(run_facts),
        )
    )
    write_files(settings, data, markdown)
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
        best.scores.critical.table if best.scores.critical else None,
        champ.scores.critical.table if champ and champ.scores and champ.scores.critical else None,
    )


def describe(result, settings: WorkflowSettings) -> str:
    """Markdown shown as the parent run's description in the MLflow UI."""
    cv_note = None
    if settings.cv_folds:
        cv_note = f"{settings.cv_folds} folds of the training data, seed {settings.seed}"
    return summary.describe(
        data=settings.data,
        test=settings.test_data or f"{settings.test_fraction:.0%} split of the data",
        configs=[x.name for x in result.candidates or result.cross_validation],
        primary_metric=settings.primary_metric,
        best=result.selection.best,
        message=result.outcome.message,
        reasons=result.outcome.decision.reasons if result.outcome.decision else [],
        cv_note=cv_note,
    )


def summary_table(result, primary_metric: str) -> pd.DataFrame:
    """One row per pipeline with its key metrics; ``best`` marks the chosen one."""
    if result.cross_validation:
        return crossval.summary_frame(result.cross_validation)
    rows = [(x.name, x.metrics) for x in result.candidates]
    return summary.summary_table(rows, result.selection.best, primary_metric)


def write_files(settings: WorkflowSettings, data: dict, markdown: str | None) -> None:
    if settings.summary_json:
        Path(settings.summary_json).write_text(json.dumps(redact(data), indent=2, default=str) + "\n")
    if settings.report_md:
        Path(settings.report_md).write_text(redact_text(markdown or f"# nlu-mlflow\n\n{data['message']}\n"))
