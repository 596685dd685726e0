"""Commands for registry events: `webhooks register`, `webhooks serve` and `sync-rasa`.

Secrets are read from environment variables only, never from options (a command line is visible
to every user of the machine in `ps`), and never printed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.cli import logs
from nlu_mlflow.cli.exits import EXIT_FAILED, EXIT_REFUSED, fail
from nlu_mlflow.cli.run_options import NOTIFY_ENV
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa.server import RasaServer, RasaServerError, RasaUnreachable
from nlu_mlflow.receiver import app as receiver_app
from nlu_mlflow.receiver import deploy, notify
from nlu_mlflow.tracking import runs, webhooks
from nlu_mlflow.tracking.errors import AccessError, TrackingError

SECRET_ENV = "NLU_MLFLOW_WEBHOOK_SECRET"  # shared by MLflow (it signs) and the receiver (it verifies)
RASA_TOKEN_ENV = "RASA_AUTH_TOKEN"  # the token `rasa run --auth-token` was started with
SLACK_URL_ENV = NOTIFY_ENV  # a Slack-compatible incoming-webhook URL, one name for every command; optional


def slack_url_from_env(name: str = SLACK_URL_ENV) -> str | None:
    """The chat webhook URL from ``$name`` (None when unset or empty)."""
    return os.environ.get(name) or None


DEFAULT_RASA_URL = "http://127.0.0.1:5005"
DEFAULT_WORK_DIR = Path("rasa-deploy")

webhooks_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold the secret and the token
    help="React to MLflow registry events: load production into Rasa and announce it.",
)

TrackingUri = Annotated[
    str | None,
    typer.Option(envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (webhooks need `mlflow server`)."),
]
ModelName = Annotated[str, typer.Option(help="Registered model whose `production` Rasa serves.")]
RasaUrl = Annotated[
    str,
    typer.Option(envvar="RASA_URL", help="Rasa server, started with `rasa run --enable-api --auth-token`."),
]
WorkDir = Annotated[
    Path,
    typer.Option(help="Folder for downloaded archives and the delivery log; the Rasa server must read it."),
]
AllowOpenApi = Annotated[
    bool, typer.Option("--allow-open-api", help="Drive a Rasa server whose API needs no token (unsafe).")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="More progress output.")]


@webhooks_app.command()
def register(
    url: Annotated[
        str, typer.Option(help="The receiver's URL as MLflow reaches it, e.g. https://host/webhook.")
    ],
    name: Annotated[
        str, typer.Option(help="Webhook name; rerunning updates it (e.g. a new secret).")
    ] = c.WEBHOOK_NAME,
    ping: Annotated[bool, typer.Option("--ping/--no-ping", help="Have MLflow send a test delivery.")] = True,
    tracking_uri: TrackingUri = None,
) -> None:
    """Create the MLflow webhook for alias and version events, signed with $NLU_MLFLOW_WEBHOOK_SECRET.

    Rerun it to change the URL or rotate the secret. Exit status 1 when the test delivery fails.
    """
    secret = _required_env(SECRET_ENV, "the webhook secret MLflow signs deliveries with")
    _tracking(tracking_uri)
    try:
        hook = webhooks.register_webhook(url, secret, name)
        result = webhooks.ping_webhook(hook.webhook_id) if ping else None
    except AccessError as exc:
        raise fail(str(exc), EXIT_REFUSED) from None
    except TrackingError as exc:
        raise fail(f"registering webhook '{name}' failed: {exc}", EXIT_FAILED) from None
    logs.echo(f"webhook '{hook.name}' ({hook.webhook_id}) -> {url} on {', '.join(webhooks.EVENTS)}")
    if result is not None and not result.success:
        raise fail(
            f"test delivery to {url} failed ({result.response_status or result.error_message}): "
            f"is `nlu-mlflow webhooks serve` running there with the same ${SECRET_ENV}?",
            EXIT_FAILED,
        )
    if result is not None:
        logs.echo(f"test delivery answered {result.response_status}")


@webhooks_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    rasa_url: RasaUrl = DEFAULT_RASA_URL,
    work_dir: WorkDir = DEFAULT_WORK_DIR,
    sync_interval: Annotated[
        float | None, typer.Option(min=1, help="Also converge Rasa on production every this many seconds.")
    ] = None,
    load_tries: Annotated[
        int, typer.Option(min=1, help="Tries of a failed load before it is recorded failed and announced.")
    ] = receiver_app.LOAD_TRIES,
    retry_backoff: Annotated[
        float, typer.Option(min=0, help="Seconds before the second try of a failed load; doubled after.")
    ] = receiver_app.RETRY_BACKOFF_S,
    allow_open_api: AllowOpenApi = False,
    tracking_uri: TrackingUri = None,
    verbose: Verbose = False,
) -> None:
    """Receive MLflow deliveries on POST /webhook (verified with $NLU_MLFLOW_WEBHOOK_SECRET), answer at once,
    load production into Rasa in the background (token: $RASA_AUTH_TOKEN) and post what went live to
    $NLU_MLFLOW_SLACK_URL. GET /deliveries shows the latest deliveries and their outcome.

    Refuses a Rasa server whose API needs no token unless --allow-open-api.
    """
    import uvicorn

    logs.setup(verbose)
    secret = _required_env(SECRET_ENV, "the webhook secret given to `nlu-mlflow webhooks register`")
    rasa = _rasa(rasa_url, allow_open_api)
    _check_rasa(rasa)
    _tracking(tracking_uri)
    slack_url = slack_url_from_env()
    if slack_url is None:
        logging.getLogger("nlu_mlflow").warning("$%s is not set: nothing will be announced", SLACK_URL_ENV)
    settings = receiver_app.ReceiverSettings(
        model_name, rasa, work_dir.resolve(), secret, slack_url, sync_interval, load_tries, retry_backoff
    )
    uvicorn.run(receiver_app.create_app(settings), host=host, port=port, log_level="info")


def sync_rasa(
    model_name: ModelName = c.DEFAULT_MODEL_NAME,
    rasa_url: RasaUrl = DEFAULT_RASA_URL,
    work_dir: WorkDir = DEFAULT_WORK_DIR,
    allow_open_api: AllowOpenApi = False,
    tracking_uri: TrackingUri = None,
    verbose: Verbose = False,
) -> None:
    """Make the Rasa server serve the current `production` version (heals deliveries MLflow dropped).

    A change or a failure is posted to $NLU_MLFLOW_SLACK_URL when set. Exit status 0 when Rasa serves
    production (or there is none), 1 when loading failed or was refused (an NLU-only model for a server
    running a full assistant; Rasa keeps its model), 2 for bad input.
    """
    logs.setup(verbose)
    rasa = _rasa(rasa_url, allow_open_api)
    _tracking(tracking_uri)
    slack_url = slack_url_from_env()
    try:
        result = deploy.sync(model_name, rasa, work_dir.resolve())
    except deploy.DeployError as exc:
        notify.announce(slack_url, notify.not_live(model_name, exc, rasa.url, receiver_app.serving(rasa)))
        raise fail(f"{exc}; Rasa keeps serving its current model.", EXIT_FAILED) from None
    if result is None:
        logs.echo(f"'{model_name}' has no production version; nothing loaded.")
    elif result.changed:
        notify.announce(slack_url, notify.went_live(result, rasa.url))
        logs.echo(
            f"{rasa.url} now serves {model_name} version {result.version.version} ({result.model_file})."
        )
    else:
        logs.echo(f"{rasa.url} already serves {model_name} version {result.version.version}.")


def _rasa(url: str, allow_open_api: bool) -> RasaServer:
    token = os.environ.get(RASA_TOKEN_ENV) or None
    if token is None and not allow_open_api:
        raise fail(f"set ${RASA_TOKEN_ENV} to the token `rasa run --auth-token` was started with.")
    return RasaServer(url.rstrip("/"), token, allow_open_api)


def _check_rasa(rasa) -> None:
    """Refuse an open or wrongly-tokened Rasa at start; a server still starting is only a warning."""
    try:
        rasa.status()
        rasa.ensure_protected()
    except RasaUnreachable as exc:
        logging.getLogger("nlu_mlflow").warning("%s; deliveries fail (and are retried) until it answers", exc)
    except RasaServerError as exc:
        raise fail(str(exc)) from None


def _tracking(tracking_uri: str | None) -> None:
    """The option, else $MLFLOW_TRACKING_URI, else the project's default store (as `nlu-mlflow run`);
    registry calls retry a bounded number of times (MLFLOW_HTTP_REQUEST_MAX_RETRIES, ..._TIMEOUT)."""
    runs.bound_http_retries()
    try:
        runs.use_tracking_uri(
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or runs.default_tracking_uri(Path.cwd())
        )
    except InputError as exc:
        raise fail(str(exc)) from None


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise fail(f"set ${name} to {what}.")
    return value


if __name__ == "__main__":
    webhooks_app()
