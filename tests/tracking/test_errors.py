"""Credentials stay out of tracking URIs (they are logged and recorded); MLflow's and HTTP failures become
``TrackingError`` (a store that failed, not a candidate), refusals ``AccessError`` read from the error code.
Refusals against a real basic-auth server are in tests/workflow/test_shared_server.py."""

from __future__ import annotations

import contextlib
import http.server
from collections.abc import Iterator

import mlflow
import pytest
import requests
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

    with servers.http_thread(Handler) as url:
        yield url


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


@contextlib.contextmanager
def gateway(upstream: str, fails) -> Iterator[str]:
    """A loopback gateway in front of a real `mlflow server`, as a team's proxy or load balancer stands: it
    passes every request through, except that it answers 500 to the uploads ``fails(path)`` picks (a proxy
    whose upload path broke). The 3.18 server itself resets the connection on a failing write instead of
    answering 500, so the 5xx is made here, in front of it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _pass(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.command == "PUT" and fails(self.path):
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"upstream write failed")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = requests.request(
                self.command,
                upstream + self.path,
                data=body,
                headers=headers,
                timeout=60,
                allow_redirects=False,
            )
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in (
                    "content-length",
                    "content-encoding",
                    "transfer-encoding",
                    "connection",
                ):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _pass

        def log_message(self, *args):
            pass

    with servers.http_thread(Handler) as url:
        yield url


@pytest.fixture(scope="module")
def store_server(tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` with served artifacts; yields its URL."""
    home = tmp_path_factory.mktemp("failing_server")
    with servers.mlflow_server(
        f"sqlite:///{home / 'mlflow.db'}", home / "artifacts", home / "server.log"
    ) as url:
        yield url


def model_upload(path: str) -> bool:
    """An upload of a logged model's files (mlflow-artifacts/artifacts/<experiment>/models/<model id>/...)."""
    return "/mlflow-artifacts/artifacts/" in path and "/models/" in path


@pytest.mark.slow
def test_a_5xx_on_an_artifact_upload_is_a_tracking_failure(store_server, tmp_path, monkeypatch):
    """Every upload through the gateway gets a 500. The upload of a candidate's model and of a run artifact
    fail as TrackingError, the store's failure that stops a workflow (workflow/candidates.py re-raises it), not
    as the candidate's own; the logged model is FAILED."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not read: logging packs the archive as it is")
    with gateway(store_server, lambda path: "/mlflow-artifacts/artifacts/" in path) as url:
        mlflow.set_tracking_uri(url)  # restored after the test (tests/conftest.py)
        experiment = mlflow.create_experiment("failing-uploads")
        with mlflow.start_run(experiment_id=experiment):
            with pytest.raises(TrackingError) as model_failed:
                models.log_model(archive)
            with pytest.raises(TrackingError) as artifact_failed:
                runs.log_artifact(archive, "inputs")
        [logged] = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    for failure in (model_failed.value, artifact_failed.value):
        assert str(failure).startswith(f"MLflow tracking server {url} failed: ")
        assert "500" in str(failure), str(failure)
    assert str(logged.status) == "FAILED"


@pytest.mark.slow
def test_a_run_whose_model_upload_fails_stops_as_a_store_failure(store_server, tmp_path, monkeypatch):
    """The same fault under `nlu-mlflow run`: the candidate trains and scores, its model upload gets a 500;
    the run stops as a tracking failure, not with a failed candidate (exit 4) and the others going on."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = mlflow.MlflowClient(store_server)
    experiment = client.create_experiment("failing-models")
    with gateway(store_server, model_upload) as url:
        done = invoke(run_args(tmp_path, url) + ["--experiment", "failing-models", "--model-name", "never"])
    assert done.exit_code not in (0, EXIT_FAILED_CANDIDATES), done.output
    assert f"MLflow tracking server {url} failed: " in done.output
    [candidate] = client.search_runs([experiment], f"tags.`{c.TAG_ROLE}` = '{c.ROLE_CANDIDATE}'")
    assert c.TAG_ERROR not in candidate.data.tags  # not recorded as the candidate's own failure
    assert client.search_registered_models(filter_string="name = 'never'") == []
