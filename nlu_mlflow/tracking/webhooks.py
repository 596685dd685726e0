"""Register the MLflow webhook that tells the receiver (``receiver.app``) about registry events."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.webhook import Webhook, WebhookTestResult

from nlu_mlflow import constants as c
from nlu_mlflow.tracking.errors import ADMIN, Needs, translated

EVENTS = c.WEBHOOK_EVENTS


# on a basic-auth server only an admin may list, create, update or test webhooks
@translated(Needs("register webhooks", ADMIN))
def register_webhook(url: str, secret: str, name: str = c.WEBHOOK_NAME) -> Webhook:
    """Create the MLflow webhook ``name`` for ``EVENTS`` pointing at ``url`` (or update the one
    that exists, so the command can be rerun to rotate the secret). Returns MLflow's ``Webhook``."""
    client = MlflowClient()
    existing = [hook for hook in client.list_webhooks(max_results=1000) if hook.name == name]
    description = "nlu-mlflow: load production into Rasa and announce it"
    if existing:
        return client.update_webhook(
            existing[0].webhook_id, url=url, events=list(EVENTS), secret=secret, status="ACTIVE"
        )
    return client.create_webhook(name, url, list(EVENTS), description=description, secret=secret)


@translated(Needs("test webhooks", ADMIN))
def ping_webhook(webhook_id: str) -> WebhookTestResult:
    """Ask the MLflow server to send a test delivery; returns MLflow's ``WebhookTestResult``."""
    return MlflowClient().test_webhook(webhook_id)
