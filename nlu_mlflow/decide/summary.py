"""What a workflow run says about its decision (pure: plain values in, summary, tags and text out).

``workflow.record`` gathers the values from a run's result; ``tracking.records`` writes what these
functions build to the parent run, the model versions and the files cron and CI read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide.promotion import Decision


def now_iso(timespec: str = "seconds") -> str:
    """Now in UTC as ISO 8601; moves of production take ``milliseconds``, so that two moves in one second
    still sort (``decide.history``)."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


@dataclass(frozen=True)
class CandidateFacts:
    config: str
    run_id: str
    version: str | None  # None when nothing was registered
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class ChampionFacts:
    version: str
    cached: bool  # scores taken from the version's cache, not measured in this run
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class RunFacts:
    """Everything a decision record says, as plain values."""

    run_id: str
    tracking_uri: str
    model_name: str
    message: str
    decision: Decision | None
    promoted: bool
    candidate: CandidateFacts | None
    champion: ChampionFacts | None
    policy: Mapping[str, object]
    selection_reasons: Mapping[str, str]
    failed: Sequence[tuple[str, str]] = ()  # (config, reason) of candidates that did not train or score
    moved: bool = False  # production was moved (False before the move, and for every other decision)
    rechecks: int = 0  # times production changed under the run and the decision was made again
    moved_at: str | None = None  # when production was moved (set once it was)
    replaced: str | None = None  # the version that held production just before the move

    @property
    def label(self) -> str:
        return decision_label(self.decision, self.promoted)

    @property
    def reasons(self) -> str:
        return "; ".join(self.decision.reasons) if self.decision else self.message


def decision_label(decision: Decision | None, promoted: bool) -> str:
    if decision is None:
        return c.DECISION_NONE
    return c.DECISION_PROMOTED if promoted else c.DECISION_KEPT


def _key_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: metrics.get(k) for k in c.KEY_METRICS}


def summary(facts: RunFacts, decided_at: str | None = None) -> dict:
    """The JSON summary written for cron and CI (also logged as decision.json)."""
    candidate, champion, decision = facts.candidate, facts.champion, facts.decision
    return {
        "decision": facts.label,
        "message": facts.message,
        "run_id": facts.run_id,
        "tracking_uri": facts.tracking_uri,
        "model_name": facts.model_name,
        "candidate": None
        if candidate is None
        else {
            "config": candidate.config,
            "run_id": candidate.run_id,
            "version": candidate.version,
            "metrics": _key_metrics(candidate.metrics),
        },
        "champion": None
        if champion is None
        else {
            "version": champion.version,
            "cached_scores": champion.cached,
            "metrics": _key_metrics(champion.metrics),
        },
        "policy": dict(facts.policy),
        "checks": decision.to_dict()["checks"] if decision else [],
        "deltas": dict(decision.deltas) if decision else {},
        "selection": dict(facts.selection_reasons),
        "failed_candidates": [{"config": name, "reason": why} for name, why in facts.failed],
        "production_moved": facts.moved,
        "moved_at": facts.moved_at if facts.moved else None,
        "replaced_version": facts.replaced if facts.moved else None,
        "rechecks": facts.rechecks,
        "decided_at": decided_at or now_iso(),
    }


def failure(run_id: str | None, tracking_uri: str | None, model_name: str, error: str, at: str | None = None):
    """The summary of a run that stopped before it decided (cron must never read last night's success)."""
    return {
        "decision": c.DECISION_FAILED,
        "message": error,
        "error": error,
        "run_id": run_id,
        "tracking_uri": tracking_uri,
        "model_name": model_name,
        "production_moved": False,
        "decided_at": at or now_iso(),
    }


def run_name(facts: RunFacts | None, day: str, error: str | None = None) -> str:
    """What the parent run is called in the MLflow UI, e.g. ``2026-12-02 promoted v7 (diet)``."""
    if facts is None or error is not None:
        return f"{day} failed"
    candidate = facts.candidate
    if candidate is None or candidate.version is None:
        return f"{day} nothing registered"
    what = f"v{candidate.version} ({candidate.config})"
    if facts.promoted:
        return f"{day} promoted {what}"
    kept = f"kept v{facts.champion.version}" if facts.champion else "kept none"
    return f"{day} {kept}; {what} not promoted"


def version_description(facts: RunFacts, primary_metric: str) -> str:
    """Markdown shown on the version's page: config, key metrics, decision and why."""
    candidate = facts.candidate
    assert candidate is not None, "a version description needs the candidate it describes"
    metrics = [
        f"{k} {candidate.metrics[k]:.4f}"
        for k in c.KEY_METRICS
        if k in candidate.metrics and "seconds" not in k
    ]
    lines = [
        f"**Config**: {candidate.config} (run {candidate.run_id})",
        f"**Scores** ({primary_metric} first): " + ", ".join(metrics),
        f"**Decision** ({facts.label}): {facts.message}",
    ]
    reasons = facts.decision.reasons if facts.decision else []
    return "\n\n".join(lines) + ("\n\n" + "\n".join(f"- {r}" for r in reasons) if reasons else "")


def run_tags(facts: RunFacts) -> dict[str, str]:
    """Tags on the parent run: the decision, its reasons and the versions involved."""
    tags = {
        c.TAG_DECISION: facts.label,
        c.TAG_DECISION_REASONS: facts.reasons[: c.MAX_TAG_LENGTH],
        c.TAG_MODEL_NAME: facts.model_name,
    }
    if facts.rechecks:
        tags[c.TAG_RECHECKS] = str(facts.rechecks)
    if facts.candidate and facts.candidate.version:
        tags[c.TAG_CANDIDATE_VERSION] = facts.candidate.version
    if facts.champion:
        tags[c.TAG_CHAMPION_VERSION] = facts.champion.version
    return tags


def moved_tags(facts: RunFacts) -> dict[str, str]:
    """Tags on the run once production moved: that it did, when, and which version it replaced."""
    tags = {c.TAG_PRODUCTION_MOVED: "true", c.TAG_MOVED_AT: facts.moved_at or now_iso("milliseconds")}
    if facts.replaced:
        tags[c.TAG_REPLACED_VERSION] = facts.replaced
    return tags


def version_tags(facts: RunFacts, at: str | None = None) -> dict[str, dict[str, str]]:
    """Tags for each model version the decision concerns (version -> tags); empty when none was registered."""
    candidate, champion = facts.candidate, facts.champion
    if candidate is None or candidate.version is None:
        return {}
    deltas = facts.decision.deltas if facts.decision else {}
    tags = {
        c.TAG_DECISION: facts.label,
        c.TAG_DECISION_REASONS: facts.reasons[: c.MAX_TAG_LENGTH],
        c.TAG_DECISION_RUN: facts.run_id,
        **{
            f"{c.TAG_DELTA_PREFIX}{k}": f"{v:+.6f}"
            for k, v in deltas.items()
            if not k.startswith(c.INTENT_F1_PREFIX)
        },
    }
    if champion:
        tags[c.TAG_CHAMPION_VERSION] = champion.version
    if facts.promoted and facts.moved:
        tags[c.TAG_PROMOTED_AT] = at or facts.moved_at or now_iso("milliseconds")
    result = {candidate.version: tags}
    if champion:
        result[champion.version] = {
            c.TAG_LAST_CHALLENGE_RUN: facts.run_id,
            c.TAG_LAST_CHALLENGE: f"{'replaced by' if facts.promoted else 'kept against'} "
            f"version {candidate.version}",
        }
    return result


def describe(
    *,
    data: object,
    test: object,
    configs: Sequence[str],
    primary_metric: str,
    best: str | None,
    message: str,
    reasons: Sequence[str],
    cv_note: str | None = None,
) -> str:
    """Markdown shown as the parent run's description in the MLflow UI."""
    lines = [
        f"**Data**: `{data}`; **test**: `{test}`",
        f"**Configs**: {', '.join(configs)}",
        f"**Best** ({primary_metric}): {best or 'none'}",
        f"**Decision**: {message}",
    ]
    if cv_note:
        lines.insert(1, f"**Cross-validation**: {cv_note}")
    return "\n\n".join(lines) + ("\n\n" + "\n".join(f"- {r}" for r in reasons) if reasons else "")


def summary_table(
    candidates: Sequence[tuple[str, Mapping[str, float]]], best: str | None, primary_metric: str
) -> pd.DataFrame:
    """One row per pipeline with its key metrics; ``best`` marks the chosen one."""
    columns = [primary_metric] + [k for k in c.KEY_METRICS if k != primary_metric]
    rows = [
        {"config": name, "best": "*" if name == best else "", **{k: metrics.get(k) for k in columns}}
        for name, metrics in candidates
    ]
    return pd.DataFrame(rows).dropna(axis=1, how="all")
