"""The history rows built from plain decision records: from/to/by/why, newest first, markers and warnings."""

from __future__ import annotations

import json

import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide.history import DecisionRun, build, changes

MODEL = "rasa-nlu"
T0 = 1_764_000_000_000  # ms


def run(run_id, decision, to, compared, moved=True, minute=0, **extra) -> DecisionRun:
    at = f"2025-11-24T16:{minute:02d}:00.000+00:00"
    values = {
        "run_id": run_id,
        "role": c.ROLE_WORKFLOW,
        "model_name": MODEL,
        "decision": decision,
        "reasons": f"why {run_id}",
        "moved": moved,
        "to_version": to,
        "compared_with": compared,
        "replaced": compared if moved else None,
        "moved_at": at if moved else None,
        "started_ms": T0 + minute * 60_000 - 30_000,
        "ended_ms": T0 + minute * 60_000 + 1_000,
        **extra,
    }
    return DecisionRun(**values)


SEQUENCE = [  # given out of order: the rows sort by when production moved
    run("r3", c.DECISION_FORCED, "2", "1", minute=3, role=c.ROLE_MANUAL, user="alice"),
    run("r1", c.DECISION_PROMOTED, "1", None, minute=1),
    run("r4", c.DECISION_ROLLBACK, "1", "2", minute=4, role=c.ROLE_MANUAL),
    run("r2", c.DECISION_KEPT, "2", "1", moved=False, minute=2),
    run("r5", c.DECISION_PROMOTED, "3", "1", moved=False, minute=5, status="FAILED"),
    run("r0", c.DECISION_FAILED, None, None, moved=False, minute=0),
]


def test_moves_newest_first_with_from_to_by_and_why():
    rows = changes(SEQUENCE, {})
    assert [(r.run_id, r.from_version, r.to_version, r.action, r.state, r.by) for r in rows] == [
        ("r5", "1", "3", c.DECISION_PROMOTED, "not moved", c.ROLE_WORKFLOW),
        ("r4", "2", "1", c.DECISION_ROLLBACK, "moved", c.ROLE_MANUAL),
        ("r3", "1", "2", c.DECISION_FORCED, "moved", c.ROLE_MANUAL),
        ("r1", None, "1", c.DECISION_PROMOTED, "moved", c.ROLE_WORKFLOW),
    ]
    assert rows[2].why == "why r3" and rows[2].user == "alice"
    assert rows[1].at == "2025-11-24T16:04:00.000+00:00"


def test_kept_decisions_only_with_include_kept():
    rows = changes(SEQUENCE, {}, include_kept=True)
    assert [r.run_id for r in rows] == ["r5", "r4", "r3", "r2", "r1"]
    kept = rows[3]
    assert (kept.state, kept.from_version, kept.to_version, kept.candidate_version) == ("kept", "1", "1", "2")
    [line] = [
        x for x in build(SEQUENCE, {}, {MODEL: "1"}, include_kept=True).table().splitlines() if "r2" in x
    ]
    assert "v1 (v2 not promoted)" in line


def test_a_recorded_but_not_moved_promotion_is_marked_in_table_and_json():
    history = build(SEQUENCE, {}, {MODEL: "1"})
    table = history.table()
    [line] = [x for x in table.splitlines() if "r5" in x]
    assert "promoted NOT MOVED" in line and "(FAILED)" in line
    assert "NOT MOVED: the decision was recorded, but production was not moved" in table
    data = json.loads(json.dumps(history.to_dict()))
    assert [(x["run_id"], x["moved"]) for x in data["changes"]][:2] == [("r5", False), ("r4", True)]
    assert data["production"] == {MODEL: "1"} and data["warnings"] == []


def test_two_moves_in_one_second_keep_their_order():
    same = "2025-11-24T16:00:00.500+00:00"
    first = run("a", c.DECISION_FORCED, "2", "1", moved_at=same, started_ms=T0)
    second = run("b", c.DECISION_ROLLBACK, "1", "2", moved_at=same, started_ms=T0 + 1)
    assert [r.run_id for r in changes([first, second], {})] == ["b", "a"]


def test_limit_keeps_the_newest():
    assert [r.run_id for r in build(SEQUENCE, {}, {MODEL: "1"}, limit=2).changes] == ["r5", "r4"]


def test_rechecked_decision_names_the_champion_it_was_compared_with():
    rechecked = run("r6", c.DECISION_PROMOTED, "4", "3", minute=6, rechecks=1)
    [row] = changes([rechecked], {})
    assert (row.from_version, row.compared_with, row.rechecks) == ("3", "3", 1)
    assert "decided again (1x), against v3" in build([rechecked], {}, {MODEL: "4"}).table()


def test_a_move_that_replaced_another_version_than_compared_says_so():
    raced = run("r7", c.DECISION_PROMOTED, "5", "3", minute=7, replaced="4")
    [row] = changes([raced], {})
    assert (row.from_version, row.compared_with) == ("4", "3")
    assert "[compared with v3, replaced v4]" in build([raced], {}, {MODEL: "5"}).table()


def test_finetuned_versions_say_from_what():
    versions = {(MODEL, "2"): {c.TAG_FINETUNED_FROM: "1"}}
    rows = changes(SEQUENCE, versions)
    assert {r.run_id: r.finetuned_from for r in rows}["r3"] == "1"
    assert "v2 (fine-tuned from 1)" in build(SEQUENCE, versions, {MODEL: "1"}).table()


def test_a_promotion_whose_run_is_gone_comes_from_the_version_tags():
    versions = {
        (MODEL, "9"): {
            c.TAG_PROMOTED_AT: "2025-11-24T17:00:00+00:00",
            c.TAG_DECISION: c.DECISION_PROMOTED,
            c.TAG_DECISION_RUN: "gone",
            c.TAG_CHAMPION_VERSION: "1",
            c.TAG_DECISION_REASONS: "better",
        },
        (MODEL, "1"): {c.TAG_PROMOTED_AT: "2025-11-24T16:04:00+00:00"},  # its move is in the runs
    }
    rows = changes(SEQUENCE, versions)
    assert (rows[0].to_version, rows[0].from_version, rows[0].source, rows[0].run_id) == (
        "9",
        "1",
        "version tags",
        "gone",
    )
    assert len(rows) == len(changes(SEQUENCE, {})) + 1


@pytest.mark.parametrize(
    "holder, warned",
    [("1", False), ("2", True), (None, False)],
    ids=["as-recorded", "set-outside", "no-production"],
)
def test_production_set_outside_nlu_mlflow_is_a_warning(holder, warned):
    history = build(SEQUENCE, {}, {MODEL: holder})
    assert bool(history.warnings) == warned
    if warned:
        assert (
            "version 2 holds 'production', but its last recorded move put version 1 there"
            in (history.warnings[0])
        )
        assert "warning: " in history.table()


def test_nothing_recorded():
    assert build([], {}, {}).table() == "no change of production recorded"


def test_two_moves_that_overlapped_are_a_warning():
    """Both promoters re-read version 1 before either wrote: both records say they replaced version 1."""
    first = run("a", c.DECISION_PROMOTED, "2", "1", minute=1)
    second = run("b", c.DECISION_PROMOTED, "3", "1", minute=2)
    [warning] = build([first, second], {}, {MODEL: "3"}).warnings
    assert warning.startswith(
        f"{MODEL}: the move to version 3 at 2025-11-24T16:02:00.000+00:00 replaced v1, "
    )
    assert "had put version 2 there: two moves overlapped" in warning
    assert build(SEQUENCE, {}, {MODEL: "1"}).warnings == []  # a chain of moves, each from the last one's
