"""One environment variable for the chat URL in every command; the old name still works (issue 13 item 17)."""

import logging

from nlu_mlflow.cli import run_options, webhooks


def test_every_command_reads_one_name_and_the_old_one_with_a_deprecation_note(monkeypatch, caplog):
    assert webhooks.SLACK_URL_ENV == run_options.NOTIFY_ENV == "NLU_MLFLOW_SLACK_URL"
    monkeypatch.delenv("NLU_MLFLOW_SLACK_URL", raising=False)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://old.example/hook")
    with caplog.at_level(logging.WARNING, logger="nlu_mlflow"):
        assert webhooks.slack_url_from_env() == "http://old.example/hook"
    assert "SLACK_WEBHOOK_URL is deprecated" in caplog.text
    monkeypatch.setenv("NLU_MLFLOW_SLACK_URL", "http://new.example/hook")
    assert webhooks.slack_url_from_env() == "http://new.example/hook"
    assert webhooks.slack_url_from_env("MY_OWN_ENV") is None  # an explicit --notify-env name is read as given
