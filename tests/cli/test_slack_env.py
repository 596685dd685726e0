"""One environment variable for the chat URL in every command; the deprecated $SLACK_WEBHOOK_URL is gone (0.x)."""

from nlu_mlflow.cli import run_options, webhooks


def test_every_command_reads_one_name_and_ignores_the_removed_old_one(monkeypatch):
    assert webhooks.SLACK_URL_ENV == run_options.NOTIFY_ENV == "NLU_MLFLOW_SLACK_URL"
    monkeypatch.delenv("NLU_MLFLOW_SLACK_URL", raising=False)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://old.example/hook")
    assert webhooks.slack_url_from_env() is None
    monkeypatch.setenv("NLU_MLFLOW_SLACK_URL", "http://new.example/hook")
    assert webhooks.slack_url_from_env() == "http://new.example/hook"
    assert webhooks.slack_url_from_env("MY_OWN_ENV") is None  # an explicit --notify-env name is read as given
