"""The chat message: built from version tags (pure), posted as incoming-webhook JSON."""

from __future__ import annotations

import json

import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.receiver import notify
from nlu_mlflow.receiver.deploy import DeployError, DeployResult
from nlu_mlflow.tracking.registry import Version
from tests.helpers import servers

TAGS = {
    c.TAG_CONFIG: "diet",
    "primary_metric": c.INTENT_ACCURACY,
    c.INTENT_ACCURACY: "0.950000",
    c.INTENT_F1_WEIGHTED: "0.940000",
    "nlu_mlflow.delta.intent_f1_weighted": "-0.002000",
    c.CRITICAL_PASS_RATE: "nan",
    c.ENTITY_F1_WEIGHTED: "not a number",
    c.TAG_DECISION: c.DECISION_PROMOTED,
    c.TAG_DECISION_REASONS: "accuracy up; ; critical suite passed",
}


def version(tags: dict | None = None) -> Version:
    return Version("rasa-nlu", "7", "run-1", TAGS if tags is None else tags, "None", 0)


@pytest.mark.parametrize(
    ("tags", "fields"),
    [
        (TAGS, ["*intent_accuracy*\n0.9500", "*intent_f1_weighted*\n0.9400 (-0.0020)"]),
        ({c.INTENT_F1_WEIGHTED: "0.5"}, ["*intent_f1_weighted*\n0.5000"]),
        ({}, []),
    ],
)
def test_score_fields_list_the_primary_metric_first_and_skip_what_is_not_a_number(tags, fields):
    assert [f["text"] for f in notify.score_fields(tags)] == fields


@pytest.mark.parametrize(
    ("event", "tags", "headline"),
    [
        (notify.EVENT_LIVE, TAGS, "rasa-nlu version 7 (diet) is live"),
        (notify.EVENT_FAILED, TAGS, "rasa-nlu version 7 (diet) failed to go live"),
        (notify.EVENT_REFUSED, TAGS, "rasa-nlu version 7 (diet) was refused"),
        (notify.EVENT_LIVE, {}, "rasa-nlu version 7 is live"),
    ],
)
def test_headline(event, tags, headline):
    assert notify.headline(version(tags), event) == headline


def test_a_live_message_says_what_where_scores_and_why():
    message = notify.went_live(DeployResult(version(), "rasa-nlu-v7.tar.gz", True, 2.5), "http://rasa:5005")
    assert message["text"] == (
        "rasa-nlu version 7 (diet) is live. Rasa http://rasa:5005 serves rasa-nlu-v7.tar.gz (loaded in 2.5 s)."
    )
    blocks = json.dumps(message["blocks"])
    assert "*Decision: promoted*\\n\\u2022 accuracy up\\n\\u2022 critical suite passed" in blocks


def test_a_failure_without_a_version_is_still_a_message():
    message = notify.not_live("rasa-nlu", DeployError("no such version"), "http://rasa:5005", "old.tar.gz")
    assert message["text"] == (
        "rasa-nlu: nothing went live. no such version. Rasa http://rasa:5005 keeps serving old.tar.gz."
    )


def test_post_sends_the_json_and_a_refusal_never_names_the_url():
    with servers.slack_sink("/services/T1/B1/secret-part") as sink:
        notify.post_slack(sink.url, {"text": "hello"})
        assert sink.messages == [{"text": "hello"}]
        wrong = sink.url.replace("secret-part", "other")
        with pytest.raises(notify.NotifyError, match="answered 404") as raised:
            notify.post_slack(wrong, {"text": "hello"})
        assert "secret-part" not in str(raised.value) and "other" not in str(raised.value)
        assert notify.announce(wrong, {"text": "hello"}) is False
