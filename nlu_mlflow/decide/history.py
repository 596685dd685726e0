"""Every change of a registered model's production version, newest first (pure: plain records in, rows out).

The source of truth is the runs that move production: a workflow's parent run and the small run a manual
``promote``/``rollback`` leaves (role ``manual``). Each records its decision before the move and is marked
(``nlu_mlflow.production_moved``, ``moved_at``, ``replaced_version``) right after it, so a decision that was
recorded but never carried out (the run stopped in between) stays visible as such. Version tags say only
the latest promotion of each version (a rollback overwrites ``promoted_at``); they fill in a move whose run
is gone (deleted for good). ``unexplained`` names a production version no recorded move put there (an alias
set by hand in the MLflow UI), ``overlapping`` a move that replaced another version than the one before it
had put there (two hosts wrote the alias at once).

``tracking.history`` reads the records; ``cli`` prints ``table`` or ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from nlu_mlflow import constants as c

MOVING = (c.DECISION_PROMOTED, c.DECISION_FORCED, c.DECISION_ROLLBACK)  # decisions that move production
MOVED, NOT_MOVED, KEPT = "moved", "not moved", "kept"  # what a row's decision came to
SOURCE_RUN, SOURCE_VERSION = "run", "version tags"
WHY_WIDTH = 90  # the table cuts longer reasons (JSON keeps them whole)


@dataclass(frozen=True)
class DecisionRun:
    """What one run that decided about production says, as plain values (its tags and run info)."""

    run_id: str
    role: str  # workflow | manual
    model_name: str | None
    decision: str  # promoted | kept | forced | rollback | none | failed
    reasons: str
    moved: bool
    to_version: str | None  # the candidate (workflow) or the version put into production (manual)
    compared_with: str | None  # the production version the decision was made against
    replaced: str | None = None  # the version that held production just before the move
    moved_at: str | None = None  # ISO 8601
    started_ms: int = 0
    ended_ms: int | None = None
    status: str = "FINISHED"  # the run's status: RUNNING, FINISHED, FAILED, KILLED
    user: str | None = None
    rechecks: int = 0
    deleted: bool = False


@dataclass(frozen=True)
class Change:
    """One row of the history: a move of production (or, with ``--all``, a decision that kept it)."""

    at: str  # ISO 8601, UTC: when production moved (when the run ended or started, if it did not)
    model_name: str | None
    from_version: str | None
    to_version: str | None  # production after the change (for a kept decision: the version that stayed)
    candidate_version: str | None  # the version decided about (the new one, or the one kept out)
    action: str  # promoted | forced | rollback | kept
    state: str  # moved | not moved | kept
    by: str  # workflow | manual | unknown (only the version tags are left)
    run_id: str | None
    run_status: str | None
    user: str | None
    why: str
    compared_with: str | None = None
    rechecks: int = 0
    finetuned_from: str | None = None
    source: str = SOURCE_RUN
    order: int = 0  # tie-break within one millisecond: the run's start time

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("order")
        data["moved"] = self.state == MOVED
        return data


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _state(run: DecisionRun) -> str | None:
    if run.moved:
        return MOVED
    if run.decision in MOVING:
        return NOT_MOVED
    return KEPT if run.decision == c.DECISION_KEPT else None


def _from_run(run: DecisionRun, versions: Mapping[tuple[str, str], Mapping[str, str]]) -> Change | None:
    state = _state(run)
    if state is None:
        return None
    tags = versions.get((run.model_name or "", run.to_version or ""), {})
    at = (run.moved_at if state == MOVED else None) or iso(run.ended_ms) or iso(run.started_ms) or ""
    return Change(
        at=at,
        model_name=run.model_name,
        from_version=run.replaced if state == MOVED and run.replaced else run.compared_with,
        to_version=run.compared_with if state == KEPT else run.to_version,
        candidate_version=run.to_version,
        action=run.decision,
        state=state,
        by=run.role,
        run_id=run.run_id,
        run_status="DELETED" if run.deleted else run.status,
        user=run.user,
        why=run.reasons,
        compared_with=run.compared_with,
        rechecks=run.rechecks,
        finetuned_from=tags.get(c.TAG_FINETUNED_FROM),
        order=run.started_ms,
    )


def _from_version(model: str, version: str, tags: Mapping[str, str]) -> Change:
    """A promotion only the version's tags remember (its run is gone)."""
    return Change(
        at=tags[c.TAG_PROMOTED_AT],
        model_name=model,
        from_version=tags.get(c.TAG_CHAMPION_VERSION),
        to_version=version,
        candidate_version=version,
        action=tags.get(c.TAG_DECISION, c.DECISION_PROMOTED),
        state=MOVED,
        by="unknown",
        run_id=tags.get(c.TAG_DECISION_RUN),
        run_status=None,
        user=None,
        why=tags.get(c.TAG_DECISION_REASONS, ""),
        finetuned_from=tags.get(c.TAG_FINETUNED_FROM),
        source=SOURCE_VERSION,
    )


def changes(
    runs: Iterable[DecisionRun],
    versions: Mapping[tuple[str, str], Mapping[str, str]],
    include_kept: bool = False,
    limit: int | None = None,
) -> list[Change]:
    """The rows, newest first: every move of production, every promotion recorded but not carried out, and
    with ``include_kept`` the decisions that kept production as it was. ``versions`` maps (model, version)
    to the version's tags."""
    rows = [row for run in runs if (row := _from_run(run, versions)) is not None]
    rows = [row for row in rows if include_kept or row.state != KEPT]
    moved_to = {(row.model_name, row.to_version) for row in rows if row.state == MOVED}
    rows += [
        _from_version(model, version, tags)
        for (model, version), tags in versions.items()
        if tags.get(c.TAG_PROMOTED_AT) and (model, version) not in moved_to
    ]
    rows.sort(key=lambda row: (_when(row.at), row.order, row.run_id or ""), reverse=True)
    return rows[:limit] if limit else rows


def unexplained(rows: Sequence[Change], holders: Mapping[str, str | None]) -> list[str]:
    """One sentence per model whose production version is not where its newest recorded move put it."""
    problems = []
    for model, holder in sorted(holders.items()):
        last = next((row for row in rows if row.model_name == model and row.state == MOVED), None)
        if holder is not None and (last is None or last.to_version != holder):
            after = (
                f"its last recorded move put version {last.to_version} there" if last else "no move recorded"
            )
            problems.append(
                f"{model}: version {holder} holds '{c.ALIAS_PRODUCTION}', but {after}: the alias was set "
                "outside nlu-mlflow (MLflow UI or API), or the move's run is gone"
            )
    return problems


def overlapping(rows: Sequence[Change]) -> list[str]:
    """One sentence per move that replaced another version than the move before it (of the same model) put
    into production: two promoters wrote the alias in the same moment (the window after the re-read), or a
    move in between was made outside nlu-mlflow."""
    problems = []
    for model in sorted({row.model_name or "" for row in rows}):
        moves = [row for row in rows if row.state == MOVED and (row.model_name or "") == model]
        for newer, older in zip(moves, moves[1:], strict=False):
            if newer.from_version != older.to_version:
                problems.append(
                    f"{model}: the move to version {newer.to_version} at {newer.at} replaced "
                    f"{_version(newer.from_version)}, but the move before it ({older.at}) had put version "
                    f"{older.to_version} there: two moves overlapped, or one was made outside nlu-mlflow"
                )
    return problems


@dataclass(frozen=True)
class History:
    """The rows newest first, who holds production now (model -> version) and what does not add up."""

    changes: list[Change]
    production: dict[str, str | None]
    warnings: list[str]

    def to_dict(self) -> dict:
        return {
            "production": dict(self.production),
            "changes": [row.to_dict() for row in self.changes],
            "warnings": list(self.warnings),
        }

    def table(self) -> str:
        return table(self.changes, self.warnings)


def build(
    runs: Iterable[DecisionRun],
    versions: Mapping[tuple[str, str], Mapping[str, str]],
    holders: Mapping[str, str | None],
    include_kept: bool = False,
    limit: int | None = None,
) -> History:
    """The history of the models in ``holders`` (model -> the version holding production now)."""
    rows = changes(runs, versions, include_kept)
    notes = unexplained(rows, holders) + overlapping(rows)
    return History(rows[:limit] if limit else rows, dict(holders), notes)


def _version(version: str | None, finetuned_from: str | None = None) -> str:
    text = f"v{version}" if version else "none"
    return f"{text} (fine-tuned from {finetuned_from})" if finetuned_from else text


def _to(row: Change) -> str:
    if row.state == KEPT:
        return f"{_version(row.to_version)} (v{row.candidate_version} not promoted)"
    return _version(row.to_version, row.finetuned_from)


def _action(row: Change) -> str:
    if row.state == NOT_MOVED:
        return f"{row.action} NOT MOVED"
    return row.action


def _by(row: Change) -> str:
    if row.source == SOURCE_VERSION:
        return f"run {row.run_id} (not found)" if row.run_id else "unknown"
    user = f" by {row.user}" if row.user else ""
    status = f" ({row.run_status})" if row.run_status not in (None, "FINISHED") else ""
    return f"{row.by} run {row.run_id}{user}{status}"


def _why(row: Change) -> str:
    why = row.why.replace("\n", " ")
    if row.rechecks:
        against = _version(row.compared_with)
        why = f"[production moved meanwhile: decided again ({row.rechecks}x), against {against}] {why}"
    if row.state == MOVED and row.compared_with != row.from_version and row.source == SOURCE_RUN:
        why = f"[compared with {_version(row.compared_with)}, replaced {_version(row.from_version)}] {why}"
    return why if len(why) <= WHY_WIDTH else why[: WHY_WIDTH - 3] + "..."


def table(rows: Sequence[Change], notes: Sequence[str] = ()) -> str:
    """The rows as a plain-text table (times in UTC), a legend when a row is NOT MOVED, then the notes."""
    header = ("WHEN (UTC)", "MODEL", "FROM", "TO", "ACTION", "BY", "WHY")
    body = [
        (
            _when(row.at).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            row.model_name or "?",
            _version(row.from_version),
            _to(row),
            _action(row),
            _by(row),
            _why(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1]
             for line in [header, *body]]  # fmt: skip
    if not body:
        lines = ["no change of production recorded"]
    if any(row.state == NOT_MOVED for row in rows):
        lines.append(
            "NOT MOVED: the decision was recorded, but production was not moved (the run stopped between "
            "recording and moving, or is still running)"
        )
    return "\n".join([*lines, *(f"warning: {note}" for note in notes)])
