"""Credentials stay out of tracking URIs (they are logged and recorded); MLflow's and HTTP failures become
``TrackingError`` (a store that failed, not a candidate), refusals ``AccessError`` read from the error code.
Refusals against a real basic-auth server are in tests/workflow/test_shared_server.py."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from nlu_mlflow import constants as c
from nlu_mlflow.cli.main import EXIT_FAILED_CANDIDATES
from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking import models, runs
from nlu_mlflow.tracking.errors import AccessError, TrackingError, access_error, checked_uri, translated
from tests.helpers import servers
from tests.helpers.cli import invoke, run_args


@pytest.mark.parametrize(
    "uri",
    [
        "https://mlflow.example.com",
        "http://127.0.0.1:5000/prefix",
        "sqlite:////tmp/mlruns.db",
        "postgresql+psycopg2://mlflow@db:5432/mlflow",  # a user name alone is no secret
        "databricks",
    ],
)
def test_uris_without_a_password_pass(uri):
    assert checked_uri(uri) == uri


@pytest.mark.parametrize(
    "uri, says",
    [
        (
            "https://alice:s3cret-pw@mlflow.example.com:8443/x",
            "give https://mlflow.example.com:8443/x and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        ),
        ("http://:s3cret-pw@127.0.0.1:5000", "give http://127.0.0.1:5000 and set"),
        ("postgresql://mlflow:s3cret-pw@db/mlflow", "PGPASSWORD for PostgreSQL"),
    ],
)
def test_a_password_in_a_uri_is_refused_in_one_sentence_without_it(uri, says):
    with pytest.raises(InputError) as refused:
        checked_uri(uri)
    [problem] = refused.value.problems
    assert "put no password in the URL" in problem and says in problem, problem
    assert "s3cret-pw" not in problem
    assert redact_url(uri) in problem


# --- HTTP failures become the project's errors ---


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """A loopback HTTP server that answers every request with ``status`` (a proxy in front of a store)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"insufficient storage")

        do_GET = do_PUT = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_error_mlflow_lets_through_becomes_a_tracking_error(tmp_path):
    """MLflow's HTTP artifact store raises requests' HTTPError for a status it does not retry (507 here)."""
    upload = tmp_path / "report.json"
    upload.write_text("{}")
    with answering(507) as url, pytest.raises(TrackingError) as failed, translated():
        get_artifact_repository(f"{url}/api/2.0/mlflow-artifacts/artifacts/1").log_artifact(str(upload))
    assert not isinstance(failed.value, AccessError)
    assert "failed: 507 Server Error" in str(failed.value)
    assert failed.value.error_code == "INTERNAL_ERROR"


def test_a_refusal_is_read_from_the_error_code_before_the_message():
    """A JSON refusal carries no status in its message: its error code says it was refused."""
    refused = access_error(MlflowException("Permission denied", error_code=PERMISSION_DENIED))
    assert isinstance(refused, AccessError) and refused.error_code == "PERMISSION_DENIED"
    assert access_error(MlflowException("endpoint /x failed with error code 403 != 200")) is None


@pytest.fixture(scope="module")
def store_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A real `mlflow server` with served artifacts; yields (url, artifacts folder)."""
    home = tmp_path_factory.mktemp("failing_server")
    artifacts = home / "artifacts"
    with servers.mlflow_server(f"sqlite:///{home / 'mlflow.db'}", artifacts, home / "server.log") as url:
        yield url, artifacts


@pytest.mark.slow
@pytest.mark.skip(
    reason="issue 25, open: with MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 the 3.18 server resets the connection before it answers 500 (seen 2026-12-07); the fault needs another way to be made"
)
def test_a_5xx_on_an_artifact_upload_is_a_tracking_failure(store_server, tmp_path, monkeypatch):
    """The server's artifact store cannot write (a file stands where its folders go): it answers 500. The
    upload of a candidate's model and of a run artifact fail as TrackingError, the store's failure that stops
    a workflow (workflow/candidates.py re-raises it), not as the candidate's own; the logged model is FAILED."""
    url, artifacts = store_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not read: logging packs the archive as it is")
    try:
        experiment = mlflow.create_experiment("failing-uploads")
        (artifacts / experiment).mkdir(parents=True)
        (artifacts / experiment / "models").write_text("a file where the model folders go")
        with mlflow.start_run(experiment_id=experiment) as run:
            with pytest.raises(TrackingError) as model_failed:
                models.log_model(archive)
            (artifacts / experiment / run.info.run_id).write_text("a file where the run's folder goes")
            with pytest.raises(TrackingError) as artifact_failed:
                runs.log_artifact(archive, "inputs")
        [logged] = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(previous)
    for failure in (model_failed.value, artifact_failed.value):
        assert str(failure).startswith(f"MLflow tracking server {url} failed: ")
        assert "500" in str(failure), str(failure)
    assert str(logged.status) == "FAILED"


@pytest.mark.slow
@pytest.mark.skip(
    reason="issue 25, open: with MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 the 3.18 server resets the connection before it answers 500 (seen 2026-12-07); the fault needs another way to be made"
)
def test_a_run_whose_model_upload_fails_stops_as_a_store_failure(store_server, tmp_path, monkeypatch):
    """The same fault under `nlu-mlflow run`: the candidate trains and scores, its model upload gets a 500;
    the run stops as a tracking failure, not with a failed candidate (exit 4) and the others going on."""
    url, artifacts = store_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = mlflow.MlflowClient(url)
    experiment = client.create_experiment("failing-models")
    (artifacts / experiment).mkdir(parents=True)
    (artifacts / experiment / "models").write_text("a file where the model folders go")
    done = invoke(run_args(tmp_path, url) + ["--experiment", "failing-models", "--model-name", "never"])
    assert done.exit_code not in (0, EXIT_FAILED_CANDIDATES), done.output
    assert f"MLflow tracking server {url} failed: " in done.output
    [candidate] = client.search_runs([experiment], f"tags.`{c.TAG_ROLE}` = '{c.ROLE_CANDIDATE}'")
    assert c.TAG_ERROR not in candidate.data.tags  # not recorded as the candidate's own failure
    assert client.search_registered_models(filter_string="name = 'never'") == []
