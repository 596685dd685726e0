"""End to end with real parts: a real `rasa run` (the pizza assistant, NLU and dialogue) with an SQL tracker
store from endpoints.yml (SQLite; PostgreSQL in a throw-away cluster) answers REST-channel messages, some out
of its domain; `nlu-mlflow inbox collect` reads them from the store Rasa wrote, while Rasa keeps running.

The reasons are checked against Rasa's own account of each conversation (`GET /conversations/ID/tracker`, a
read path independent of the inbox's SQL reader). Production in the MLflow registry is another model (the
light NLU model) than the one that answered, so every item is parsed again with it, and the items it labels
otherwise carry `outdated_disagrees` (checked against that model's own parse).
"""

from __future__ import annotations

import json
import secrets
import sqlite3

import mlflow
import pytest
import requests

from nlu_mlflow import constants as c
from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.rasa import fast_load, inference
from nlu_mlflow.rasa.archive import archive_model_id
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow import inbox
from nlu_mlflow.workflow.inbox import open_inbox
from tests.helpers import servers
from tests.helpers.cli import invoke

pytestmark = pytest.mark.slow

MODEL = "inbox-e2e"
CONVERSATIONS = {
    "alice": ["hi", "I want two large pepperoni pizzas", "yes"],
    "bob": ["what's the weather like in Paris tomorrow", "do you sell running shoes", "bye"],
    "carol": ["my email is carol.smith@example.org, where is my order", "call me on +49 151 2345 6789"],
    "dave": ["hi", "can you book me a flight to Rome"],
}
RAW_PERSONAL = ("carol.smith@example.org", "2345 6789")


@pytest.fixture(scope="module")
def production(logreg_model, tmp_path_factory):
    """A registry whose production version is the light NLU model (not the model `rasa run` serves)."""
    root = tmp_path_factory.mktemp("inbox_registry")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("inbox-e2e", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        model_uri = pyfunc_model.log_model(logreg_model.archive).model_uri
    version = registry.register(model_uri, MODEL, {}).version
    mlflow.MlflowClient().set_registered_model_alias(MODEL, c.ALIAS_PRODUCTION, version)
    yield uri
    mlflow.set_tracking_uri(previous)


def _talk(api: servers.RasaApi) -> dict[str, dict]:
    for sender, texts in CONVERSATIONS.items():
        for text in texts:
            api.say(text, sender)
    return {
        sender: requests.get(
            f"{api.url}/conversations/{sender}/tracker", params={"token": api.token}, timeout=30
        ).json()
        for sender in CONVERSATIONS
    }


def _expected_reasons(trackers: dict[str, dict], rules: rules_of.Rules) -> dict[str, set[str]]:
    """Per masked text, the reasons Rasa's own tracker gives (fallback intent or action, small margin)."""
    expected: dict[str, set[str]] = {}
    for tracker in trackers.values():
        last = None
        for event in tracker["events"]:
            if event["event"] == "user":
                parse = event["parse_data"]
                from nlu_mlflow.decide.masking import mask

                last = rules_of.normalise(mask(event["text"]).text)
                found = rules_of.reasons(parse["intent"]["name"], parse.get("intent_ranking") or [], rules)
                expected.setdefault(last, set()).update(found)
            elif event["event"] == "action" and event["name"] in rules.fallback_actions and last:
                expected[last].add(rules_of.FALLBACK)
    return expected


def _collect(tmp_path, endpoints, production_uri, model_name=MODEL):
    args = [
        "inbox",
        "collect",
        "--endpoints",
        str(endpoints),
        "--inbox",
        f"sqlite:///{tmp_path / 'inbox.db'}",
    ]
    return invoke([*args, "--model-name", model_name, "--tracking-uri", production_uri])


def _check_inbox(tmp_path, trackers, served_archive, production_archive) -> None:
    store = open_inbox(f"sqlite:///{tmp_path / 'inbox.db'}")
    items = {item.key: item for item in store.items()}
    rules = rules_of.Rules()
    expected = _expected_reasons(trackers, rules)
    assert set(items) == set(expected)
    served_id = archive_model_id(served_archive)
    parsed = inference.parse_texts(
        fast_load.load_processor(production_archive), [item.text for item in items.values()]
    )
    for item, production_parse in zip(items.values(), parsed, strict=True):
        disagree = production_parse["intent"]["name"] != item.intent
        want = expected[item.key] | ({rules_of.OUTDATED_DISAGREES} if disagree else set())
        want |= {rules_of.FREQUENT} if item.count >= rules.frequent else set()
        assert set(item.reasons) == want, item.key
        assert item.model_id == served_id and item.channels == ["rest"]
        assert item.production_intent == production_parse["intent"]["name"]
    assert items["hi"].count == 2
    assert "my email is [email], where is my order" in items and "call me on [phone]" in items
    # an item is queued exactly when it has a reason besides being in the training data (a tiny model may
    # answer an out-of-domain message confidently and production agree: it stays new, offered after the queue)
    flagged = {key for key, item in items.items() if set(item.reasons) - {rules_of.IN_TRAINING_DATA}}
    assert {key for key, item in items.items() if item.state == "queued"} == flagged
    out_of_domain = [rules_of.normalise(t) for t in CONVERSATIONS["bob"][:2] + CONVERSATIONS["dave"][1:]]
    assert any(items[key].reasons != [rules_of.OUTDATED_DISAGREES] for key in out_of_domain)
    stored = (tmp_path / "inbox.db").read_bytes()
    assert not any(raw.encode() in stored for raw in RAW_PERSONAL)
    assert not any(sender.encode() in stored for sender in CONVERSATIONS)


def _live_round(tmp_path, endpoints, assistant_model, logreg_model, production, log_name: str) -> None:
    token = "rasa-token-" + secrets.token_hex(8)
    with servers.rasa_server(
        assistant_model.archive, token, tmp_path / log_name, rest_channel=True, endpoints=endpoints
    ) as api:
        trackers = _talk(api)
        done = _collect(tmp_path, endpoints, production)
        assert done.exit_code == 0, done.output
        events = sum(len(texts) for texts in CONVERSATIONS.values())
        assert f"collected {events} message(s)" in done.output
        _check_inbox(tmp_path, trackers, assistant_model.archive, logreg_model.archive)
        api.say("hi", "erin")  # Rasa writes on: the next collect reads only this one
        again = _collect(tmp_path, endpoints, production)
        assert (
            again.exit_code == 0
            and "collected 1 message(s)" in again.output
            and "0 new item(s)" in again.output
        )
    status = invoke(["inbox", "status", "--inbox", f"sqlite:///{tmp_path / 'inbox.db'}"])
    assert status.exit_code == 0 and "oldest unreviewed" in status.output
    assert inbox.counts(open_inbox(f"sqlite:///{tmp_path / 'inbox.db'}")).open >= 4


def test_rasa_run_with_a_sqlite_tracker_store(
    tmp_path, assistant_model, logreg_model, production, monkeypatch
):
    monkeypatch.setenv("INBOX_TEST_TRACKER_DB", str(tmp_path / "tracker.db"))
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: ${INBOX_TEST_TRACKER_DB}\n")
    _live_round(tmp_path, endpoints, assistant_model, logreg_model, production, "rasa-sqlite.log")
    rows = sqlite3.connect(tmp_path / "tracker.db").execute("SELECT count(*) FROM events").fetchone()
    assert rows[0] > 10  # Rasa's own rows, untouched by the reader


def test_rasa_run_with_a_postgresql_tracker_store(tmp_path, assistant_model, logreg_model, production):
    if servers.postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/install-postgres.sh` (CI does).")
    with servers.postgres(extra_databases=("rasa",)) as uri:
        port = uri.rsplit(":", 1)[1].split("/")[0]
        endpoints = tmp_path / "endpoints.yml"
        endpoints.write_text(
            "tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: 127.0.0.1\n"
            f"  port: {port}\n  db: rasa\n  username: postgres\n"
        )
        _live_round(tmp_path, endpoints, assistant_model, logreg_model, production, "rasa-postgres.log")


def test_collect_names_the_missing_production_and_still_collects(tmp_path, production):
    """No production version of the named model: the messages are collected, nothing is re-parsed."""
    from tests.helpers.tracker import create_events_table, insert_events, user_event

    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    insert_events(create_events_table(url), "a", [user_event("hello", "greet", [("greet", 0.9)])])
    args = ["inbox", "collect", "--tracker-store", url, "--inbox", f"sqlite:///{tmp_path / 'inbox.db'}"]
    done = invoke([*args, "--model-name", "no-such-model", "--tracking-uri", production])
    assert done.exit_code == 0, done.output
    assert "production parsed 0 outdated item(s)" in done.output
    assert json.loads(json.dumps(open_inbox(f"sqlite:///{tmp_path / 'inbox.db'}").items()[0].reasons)) == []
