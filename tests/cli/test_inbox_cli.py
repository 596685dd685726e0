"""`nlu-mlflow inbox collect|status|forget` through the CLI: what a user sees, exit codes, faults."""

from __future__ import annotations

import sqlite3

import pytest

from tests.helpers import servers
from tests.helpers.cli import invoke
from tests.helpers.tracker import action_event, create_events_table, insert_events, user_event


@pytest.fixture()
def tracker(tmp_path):
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    engine = create_events_table(url)
    insert_events(engine, "+4915112345678", [
        user_event("call me at +49 151 1234 5678", "inform", [("inform", 0.5), ("greet", 0.45)]),
        user_event("what is the meaning of life", "greet", [("greet", 0.4), ("bye", 0.2)]),
        action_event("action_default_fallback"),
    ])  # fmt: skip
    insert_events(engine, "other", [user_event("what is the meaning of life", "greet", [("greet", 0.4)])])
    return url


def _inbox(tmp_path) -> list[str]:
    return ["--inbox", f"sqlite:///{tmp_path / 'inbox.db'}"]


def test_collect_then_status_then_forget(tmp_path, tracker):
    done = invoke(["inbox", "collect", "--tracker-store", tracker, "--no-production", *_inbox(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "collected 3 message(s)" in done.output and "2 new item(s)" in done.output
    status = invoke(["inbox", "status", *_inbox(tmp_path)])
    assert status.exit_code == 0
    assert (
        "queued      2" in status.output and "fallback 1" in status.output and "low_margin 1" in status.output
    )
    assert "call me at [PHONE]" in status.output or "what is the meaning of life" in status.output
    forgot = invoke(["inbox", "forget", "+4915112345678", *_inbox(tmp_path)])
    assert forgot.exit_code == 0, forgot.output
    assert "1 item(s)" in forgot.output and "1 item(s) other senders sent too kept" in forgot.output
    rows = sqlite3.connect(tmp_path / "inbox.db").execute("SELECT key, count FROM inbox_items").fetchall()
    assert rows == [("what is the meaning of life", 1)]


def test_collect_reads_the_tracker_store_from_endpoints_yml_with_variables(tmp_path, tracker, monkeypatch):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: ${RASA_DB_PATH}\n")
    monkeypatch.setenv("RASA_DB_PATH", tracker.removeprefix("sqlite:///"))
    done = invoke(["inbox", "collect", "--endpoints", str(endpoints), "--no-production", *_inbox(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "collected 3 message(s)" in done.output


@pytest.mark.parametrize(
    "content, says",
    [
        ("tracker_store:\n  type: SQL\n  db: ${NOT_SET_ANYWHERE_X}\n", "set the variable"),
        ("tracker_store:\n  type: redis\n  url: localhost\n", "is not Rasa's SQL tracker store"),
        ("action_endpoint:\n  url: http://x\n", "no `tracker_store:` section"),
    ],
)
def test_a_bad_endpoints_file_is_one_sentence_and_exit_2(tmp_path, content, says):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(content)
    done = invoke(["inbox", "collect", "--endpoints", str(endpoints), "--no-production", *_inbox(tmp_path)])
    assert done.exit_code == 2 and says in done.output and str(endpoints) in done.output


def test_an_unreachable_tracker_store_exits_69_and_hides_the_password(tmp_path):
    url = f"postgresql+psycopg2://rasa:s3cret-pw@127.0.0.1:{servers.free_port()}/rasa"
    done = invoke(["inbox", "collect", "--tracker-store", url, "--no-production", *_inbox(tmp_path)])
    assert done.exit_code == 69, done.output
    assert "cannot connect" in done.output and "s3cret-pw" not in done.output
    missing = invoke(
        ["inbox", "collect", "--tracker-store", f"sqlite:///{tmp_path}/nope.db", *_inbox(tmp_path)]
    )
    assert missing.exit_code == 69 and not (tmp_path / "nope.db").exists()  # read-only: nothing created


def test_a_database_that_is_not_rasas_exits_65(tmp_path):
    other = tmp_path / "mlruns.db"
    sqlite3.connect(other).execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT)")
    done = invoke(
        ["inbox", "collect", "--tracker-store", f"sqlite:///{other}", "--no-production", *_inbox(tmp_path)]
    )
    assert done.exit_code == 65 and "not Rasa's SQL tracker store (it has no `events` table)" in done.output
    events = tmp_path / "events.db"
    sqlite3.connect(events).execute("CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT)")
    done = invoke(
        ["inbox", "collect", "--tracker-store", f"sqlite:///{events}", "--no-production", *_inbox(tmp_path)]
    )
    assert done.exit_code == 65 and "lacks action_name, data, intent_name, sender_id" in done.output


def test_a_bad_inbox_section_names_the_file_and_field(tmp_path, tracker):
    workflow = tmp_path / "nlu-mlflow.yml"
    workflow.write_text("inbox:\n  margin: 3\n")
    done = invoke(
        ["inbox", "collect", "--workflow", str(workflow), "--tracker-store", tracker, *_inbox(tmp_path)]
    )
    assert done.exit_code == 2 and f"{workflow}: inbox.margin" in done.output


def test_conversations_lists_the_ones_that_went_wrong_newest_first(tmp_path):
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    engine = create_events_table(url)
    now = __import__("time").time()
    fine = [("greet", 0.95), ("bye", 0.01)]
    insert_events(engine, "happy", [user_event("hi", "greet", fine, timestamp=now - 60)])
    insert_events(engine, "lost", [
        user_event("weather?", "greet", [("greet", 0.3)], timestamp=now - 300),
        action_event("action_default_fallback", timestamp=now - 299),
    ])  # fmt: skip
    insert_events(engine, "angry", [
        user_event("human please", "human_handoff", fine, timestamp=now - 120),
        action_event("utter_handoff", timestamp=now - 119),
    ])  # fmt: skip
    insert_events(engine, "old", [action_event("action_default_fallback", timestamp=now - 30 * 86400)])
    done = invoke(["inbox", "conversations", "--tracker-store", url])
    assert done.exit_code == 0, done.output
    lines = done.output.strip().splitlines()
    assert [line.split()[3] for line in lines] == ["angry", "lost"]
    assert "handoff x2" in lines[0] and "fallback x1, low_confidence x1" in lines[1]


def test_a_conversation_becomes_a_masked_test_story_rasa_reads(tmp_path):
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    insert_events(create_events_table(url), "+4915112345678", [
        user_event("hi", "greet", [("greet", 0.9)]),
        {"event": "bot", "text": "Hi! What can I get you?", "timestamp": 1.0, "data": {}},
        user_event("mail it to anna@example.org", "inform", [("inform", 0.4)]),
        action_event("action_default_fallback"),
    ])  # fmt: skip
    out = tmp_path / "tests" / "test_live.yml"
    args = ["inbox", "conversation", "+4915112345678", "--to-test-story", str(out), "--tracker-store", url]
    done = invoke([*args, *_inbox(tmp_path)])
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "mail it to [EMAIL]" in text and "anna@example.org" not in text and "4915112345678" not in text
    [story] = YAMLStoryReader().read_from_file(out)
    assert story.block_name.startswith("live conversation ")
    missing = invoke(
        [
            "inbox",
            "conversation",
            "nobody",
            "--to-test-story",
            str(tmp_path / "x.yml"),
            "--tracker-store",
            url,
        ]
    )
    assert missing.exit_code == 2 and "no conversation 'nobody'" in missing.output
    assert not (tmp_path / "x.yml").exists()
