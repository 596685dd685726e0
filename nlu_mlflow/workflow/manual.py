"""Manual moves of the production pointer: status, promote a chosen version, roll back.

Each move is recorded: tags on the versions involved, and a small MLflow run (role ``manual``)
with a ``decision.json`` (``tracking.records``), so the history of who moved what, when and why stays
in the tracking store.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from nlu_mlflow import constants as c
from nlu_mlflow.decide import replay as replay_rules
from nlu_mlflow.decide import score_record
from nlu_mlflow.decide.promotion import Decision, PromotionPolicy, Scores, decide
from nlu_mlflow.decide.summary import now_iso
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import records, registry, score_cache
from nlu_mlflow.workflow import replay


@dataclass(frozen=True)
class Status:
    name: str
    production: registry.Version | None
    previous: registry.Version | None

    def lines(self) -> list[str]:
        if self.production is None:
            return [
                f"{self.name}: no version holds alias '{c.ALIAS_PRODUCTION}' yet; run the workflow first."
            ]
        v, tags = self.production, self.production.tags
        lines = [
            f"{self.name} version {v.version} is in production (stage {v.stage})",
            f"  since:   {tags.get(c.TAG_PROMOTED_AT, 'unknown')} ({tags.get(c.TAG_DECISION, 'unknown')})",
            f"  config:  {tags.get(c.TAG_CONFIG, '?')}   source run: {tags.get('source_run_id', v.run_id)}",
        ]
        lines += [
            f"  {k}: {tags[k]}" for k in (tags.get("primary_metric"), c.CRITICAL_PASS_RATE) if k and k in tags
        ]
        if tags.get(c.TAG_DECISION_REASONS):
            lines.append(f"  why:     {tags[c.TAG_DECISION_REASONS]}")
        if self.previous is not None:
            lines.append(f"  previous-production: version {self.previous.version}")
        return lines


def status(name: str) -> Status:
    return Status(name, registry.alias_holder(name), registry.alias_holder(name, c.ALIAS_PREVIOUS))


def _newest(references: dict[str, dict], keys) -> str | None:
    """The key whose scores were measured last (by time, whatever the digests spell)."""
    return max(
        keys,
        key=lambda k: (str(references[k].get("at") or references[k].get("scored_at") or ""), k),
        default=None,
    )


def common_scores(candidate: registry.Version, champion: registry.Version) -> tuple[dict, dict] | None:
    """Scores of both versions measured on the same test data, suite and conversations: of the data sets
    both were scored on, the one the candidate was scored on most recently."""
    mine, theirs = score_cache.references(candidate), score_cache.references(champion)
    key = _newest(mine, set(mine) & set(theirs))
    if key is None:
        return None
    new, old = score_cache.load(candidate, key), score_cache.load(champion, key)
    return (new, old) if new is not None and old is not None else None


def gate(candidate: registry.Version, champion: registry.Version | None, policy: PromotionPolicy) -> Decision:
    """The workflow's gates on cached scores: primary metric, entity and per-intent guards (with the test
    support counts), critical and conversation gates, and the same paired significance test."""
    if champion is None:
        own = score_cache.references(candidate)
        newest = _newest(own, own)
        cached = score_cache.load(candidate, newest) if newest else None
        return decide(score_record.scores(cached) if cached else Scores({}), None, policy)
    both = common_scores(candidate, champion)
    if both is None:
        raise InputError(
            f"versions {candidate.version} and {champion.version} of '{candidate.name}' have no scores on "
            "the same test data; run the workflow (it re-scores production) or pass --force."
        )
    new, old = (score_record.scores(x) for x in both)
    decision = decide(Scores(new.metrics, new.intent_support, new.correct), old, policy)
    return _with_live(decision, candidate, new.metrics, policy)


def _with_live(decision: Decision, candidate: registry.Version, metrics, policy: PromotionPolicy) -> Decision:
    """The policy's live gates on the replay figures the version carries (recorded or just recomputed)."""
    figures = replay.figures_of(candidate.tags) or None
    checks = replay_rules.live_checks(figures, replay_rules.live_score(dict(metrics)), policy)
    return replay_rules.with_live(decision, checks)


def promote(
    name: str,
    version: str,
    policy: PromotionPolicy,
    force: bool = False,
    live: replay.LiveTraffic | None = None,
) -> tuple[Decision | None, bool]:
    """Promote ``version`` when it passes the gates against production (or always with ``force``). With
    ``live``, the replay figures are recomputed first when the recorded ones are older than its window."""
    candidate = registry.get_version(name, version)
    champion = registry.alias_holder(name)
    if live is not None and champion is not None and replay.stale(candidate.tags, live.window):
        candidate = _replay_again(live, candidate, champion)
    decision = None if force else gate(candidate, champion, policy)
    if decision is not None and not decision.promote:
        return decision, False
    label = c.DECISION_FORCED if force else c.DECISION_PROMOTED
    why = f"forced by {getpass.getuser()}" if decision is None else "; ".join(decision.reasons)
    _record_and_move(name, label, candidate, champion, why, decision)
    return decision, True


def live_lines(name: str, version: str) -> list[str]:
    """The live-traffic figures ``promote`` shows before it moves production."""
    return replay.lines(replay.figures_of(registry.get_version(name, version).tags))


def _replay_again(live: replay.LiveTraffic, candidate: registry.Version, champion: registry.Version):
    """Replay this week's traffic through both versions; the new figures become the version's tags."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-replay-") as work:
        result = replay.for_versions(live, candidate, champion, Path(work))
    registry.set_version_tags(
        candidate.name, candidate.version, replay.version_tags(result.report, live.window)
    )
    return registry.get_version(candidate.name, candidate.version)


def rollback(name: str) -> tuple[registry.Version, registry.Version]:
    """Put ``previous-production`` back into production; the rolled-back version becomes previous."""
    current = registry.alias_holder(name)
    previous = registry.alias_holder(name, c.ALIAS_PREVIOUS)
    if current is None or previous is None:
        raise InputError(
            f"model '{name}' has no '{c.ALIAS_PREVIOUS}' version to roll back to; see `nlu-mlflow status`."
        )
    _record_and_move(
        name,
        c.DECISION_ROLLBACK,
        previous,
        current,
        f"rollback by {getpass.getuser()} from version {current.version}",
    )
    return previous, current


def _record_and_move(
    name, label, promoted: registry.Version, replaced, why: str, decision: Decision | None = None
) -> None:
    """Record the move (version tags, a manual run with decision.json), then move, then mark it done."""
    tags = {promoted.version: {c.TAG_DECISION: label, c.TAG_DECISION_REASONS: why[: c.MAX_TAG_LENGTH]}}
    if replaced is not None:
        tags[replaced.version] = {c.TAG_LAST_CHALLENGE: f"{label}: replaced by {promoted.version}"}
    record = {
        "action": label,
        "decision": label,
        "model_name": name,
        "version": promoted.version,
        "replaced": replaced.version if replaced else None,
        "reasons": why,
        "at": now_iso(),
        "checks": decision.to_dict()["checks"] if decision else [],
        "production_moved": False,
    }
    run_id = records.write_manual_move(name, label, tags, record, why)
    previous = registry.move_production(name, promoted.version)
    at = now_iso("milliseconds")
    records.mark_manual_moved(
        run_id, name, promoted.version, record, at, previous.version if previous else None
    )
