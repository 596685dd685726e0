"""The replay on tracker stores written with Rasa's own table and event classes, and real trained models
(the end-to-end test with a real `rasa run` and registered models is tests/workflow/test_replay_e2e.py)."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from nlu_mlflow.workflow import replay
from tests.helpers.tracker import create_events_table, insert_events, user_event

NOW = time.time()
DAY = 86_400.0


def _store(tmp_path):
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    return url, create_events_table(url)


def _said(text: str, days_ago: float) -> dict:
    return user_event(text, "greet", [("greet", 0.9)], timestamp=NOW - days_ago * DAY)


def test_the_window_counts_each_text_and_skips_older_and_malformed_events(tmp_path):
    url, tracker = _store(tmp_path)
    insert_events(
        tracker, "a", [_said("too old", 9), _said("hello", 3), _said("hello", 1), _said("bye", 0.5)]
    )
    with tracker.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES ('b', 'user', :t, '{x')"
            ),
            {"t": NOW - DAY},
        )
    traffic = replay.read_traffic(replay.LiveTraffic(url, "7d"), now=NOW)
    assert dict(zip(traffic.texts, traffic.counts, strict=True)) == {"hello": 2, "bye": 1}
    assert (traffic.first_id, traffic.last_id) == (2, 4)
    assert replay.read_traffic(replay.LiveTraffic(url, "2d"), now=NOW).messages == 2


def test_a_store_that_is_not_rasas_is_refused(tmp_path):
    from nlu_mlflow.live.tracker_store import TrackerStoreError

    url = f"sqlite:///{tmp_path / 'other.db'}"
    with sa.create_engine(url).begin() as connection:
        connection.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY)"))
    with pytest.raises(TrackerStoreError, match="not Rasa's SQL tracker store"):
        replay.read_traffic(replay.LiveTraffic(url, "7d"))


@pytest.mark.slow
def test_two_trained_models_replayed_on_the_same_window(tmp_path, logreg_model, diet_model, pizza_test):
    url, tracker = _store(tmp_path)
    texts = [m.get("text") for m in pizza_test.examples] + ["write to me at eve@example.org please"]
    insert_events(tracker, "a", [_said(t, 1) for t in texts] + [_said(texts[0], 2)] * 4)
    live = replay.LiveTraffic(url, "7d")
    result = replay.replay(live, diet_model.archive, logreg_model.archive, frozenset({"greet"}))
    report = result.report
    assert report.messages == len(texts) + 4 and report.unique == len(set(texts))
    flipped = sum(f.count for f in report.flips)
    assert report.agreement_rate == pytest.approx(1 - flipped / report.messages)
    assert len(result.flipped) == sum(f.unique for f in report.flips)
    for _text, _, before, after in result.flipped:  # each flip is a real difference of the two parses
        assert (before["intent"]["name"], before["intent"]["confidence"] < 0.3) != (
            after["intent"]["name"],
            after["intent"]["confidence"] < 0.3,
        )
    assert "eve@example.org" not in json.dumps([report.flips_table(), [t for t, *_ in result.flipped]])
    assert "[EMAIL]" in replay._masker(live, {})("write to me at eve@example.org please")
