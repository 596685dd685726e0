"""Manual moves of the production pointer: status, promote a chosen version, roll back.

Each move is recorded: tags on the versions involved, and a small MLflow run (role ``manual``)
with a ``decision.json`` (``tracking.records``), so the history of who moved what, when and why stays
in the tracking store.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass

from nlu_mlflow import constants as c
from nlu_mlflow.decide.promotion import Decision, PromotionPolicy, Scores, decide
from nlu_mlflow.decide.summary import now_iso
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import records, registry
from nlu_mlflow.tracking.score_cache import SCORES_TAG_PREFIX as SCORES_PREFIX


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


def common_scores(candidate: registry.Version, champion: registry.Version) -> tuple[dict, dict] | None:
    """Scores of both versions measured on the same test data and critical suite, newest key first."""
    keys = sorted(k for k in candidate.tags if k.startswith(SCORES_PREFIX) and k in champion.tags)
    if not keys:
        return None
    return json.loads(candidate.tags[keys[-1]]), json.loads(champion.tags[keys[-1]])


def _scores(cached: dict) -> Scores:
    return Scores(cached["metrics"], {}, tuple(x == "1" for x in cached["correct"]))


def gate(candidate: registry.Version, champion: registry.Version | None, policy: PromotionPolicy) -> Decision:
    if champion is None:
        own = [json.loads(v) for k, v in candidate.tags.items() if k.startswith(SCORES_PREFIX)]
        return decide(_scores(own[-1]) if own else Scores({}), None, policy)
    both = common_scores(candidate, champion)
    if both is None:
        raise InputError(
            f"versions {candidate.version} and {champion.version} of '{candidate.name}' have no scores on "
            "the same test data; run the workflow (it re-scores production) or pass --force."
        )
    return decide(_scores(both[0]), _scores(both[1]), policy)


def promote(
    name: str, version: str, policy: PromotionPolicy, force: bool = False
) -> tuple[Decision | None, bool]:
    """Promote ``version`` when it passes the gates against production (or always with ``force``)."""
    candidate = registry.get_version(name, version)
    champion = registry.alias_holder(name)
    decision = None if force else gate(candidate, champion, policy)
    if decision is not None and not decision.promote:
        return decision, False
    previous = registry.move_production(name, candidate.version)
    label = c.DECISION_FORCED if force else c.DECISION_PROMOTED
    why = f"forced by {getpass.getuser()}" if force else "; ".join(decision.reasons)
    _record(name, label, candidate, previous, why, decision)
    return decision, True


def rollback(name: str) -> tuple[registry.Version, registry.Version]:
    """Put ``previous-production`` back into production; the rolled-back version becomes previous."""
    current = registry.alias_holder(name)
    previous = registry.alias_holder(name, c.ALIAS_PREVIOUS)
    if current is None or previous is None:
        raise InputError(
            f"model '{name}' has no '{c.ALIAS_PREVIOUS}' version to roll back to; see `nlu-mlflow status`."
        )
    registry.move_production(name, previous.version)
    _record(
        name,
        c.DECISION_ROLLBACK,
        previous,
        current,
        f"rollback by {getpass.getuser()} from version {current.version}",
    )
    return previous, current


def _record(
    name, label, promoted: registry.Version, replaced, why: str, decision: Decision | None = None
) -> None:
    at = now_iso()
    tags = {
        promoted.version: {
            c.TAG_DECISION: label,
            c.TAG_DECISION_REASONS: why[: c.MAX_TAG_LENGTH],
            c.TAG_PROMOTED_AT: at,
        }
    }
    if replaced is not None:
        tags[replaced.version] = {"nlu_mlflow.last_challenge": f"{label}: replaced by {promoted.version}"}
    record = {
        "action": label,
        "model_name": name,
        "version": promoted.version,
        "replaced": replaced.version if replaced else None,
        "reasons": why,
        "at": at,
        "checks": decision.to_dict()["checks"] if decision else [],
    }
    records.write_manual_move(name, label, tags, record, why)
