"""Unattended runs: training data from a local HTTP server (good, slow, 500, 401, truncated, invalid),
the overlap lock, the markdown report and the Slack-compatible notification (a local sink)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.cli.main import EXIT_LOCKED
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.workflow import lock as runlock
from nlu_mlflow.workflow import remote
from tests.helpers import CONFIGS, PIZZA, cli

TOKEN = "s3cret-data-token-7f1c"
TRAIN_YAML = (PIZZA / "train.yml").read_bytes()
TRAIN_JSON = load_nlu(PIZZA / "train.yml").training_data.nlu_as_json().encode()


class DataHandler(BaseHTTPRequestHandler):
    """Serves the pizza training data; the path picks the behaviour."""

    hits: dict[str, int] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        DataHandler.hits[self.path] = DataHandler.hits.get(self.path, 0) + 1
        if self.path.startswith("/signed/"):  # a pre-signed export link: the signature is the credential
            return self._send(200, TRAIN_YAML, "text/yaml")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}" or self.path == "/unauthorized":
            return self._send(401, b"no")
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/error":
            return self._send(500, b"boom")
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(TRAIN_YAML)))
            self.end_headers()
            self.wfile.write(TRAIN_YAML[: len(TRAIN_YAML) // 2])
            return None
        if self.path == "/invalid":
            return self._send(200, b"nlu: [this is not: valid")
        body, kind = (
            (TRAIN_JSON, "application/json") if self.path == "/train.json" else (TRAIN_YAML, "text/yaml")
        )
        return self._send(200, body, kind)

    def _send(self, status, body, kind="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SinkHandler(BaseHTTPRequestHandler):
    messages: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        SinkHandler.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def data_server():
    server, url = serve(DataHandler)
    yield url
    server.shutdown()


@pytest.fixture()
def sink(monkeypatch):
    server, url = serve(SinkHandler)
    SinkHandler.messages.clear()
    monkeypatch.setenv("NLU_MLFLOW_SLACK_URL", url)
    yield SinkHandler.messages
    server.shutdown()


@pytest.fixture()
def token(monkeypatch):
    monkeypatch.setenv("NLU_MLFLOW_DATA_TOKEN", TOKEN)


def invoke(tmp_path, uri, data, *extra):
    log = ["--log-file", tmp_path / "run.log", "--data-timeout", "1", "--data-retries", "1"]
    return cli.invoke(
        cli.run_args(tmp_path, uri, data, PIZZA / "test.yml", CONFIGS / "logreg_crf.yml", 1, *log, *extra)
    )


def workflow_runs(uri):
    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, f"tags.`{c.TAG_ROLE}` = 'workflow'") if experiments else []


def no_version_registered(uri):
    return mlflow.MlflowClient(uri).search_model_versions() == []


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/train.yml", "/train.json"])
@pytest.mark.usefixtures("token")
def test_good_remote_data_is_fetched_logged_and_the_token_kept_secret(
    tmp_path, tracking_uri, data_server, sink, path
):
    report = tmp_path / "report.md"
    result = invoke(tmp_path, tracking_uri, data_server + path + "?source=export", "--report-md", str(report))
    assert result.exit_code == 0, result.output
    [parent] = workflow_runs(tracking_uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["data_source"] == data_server + path  # no query string
    client = mlflow.MlflowClient(tracking_uri)
    child = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )[0]
    [train_input] = [d for d in child.inputs.dataset_inputs if d.dataset.name == "train"]
    assert train_input.dataset.digest == load_nlu(PIZZA / "train.yml").digest
    assert "## Overall" in report.read_text()
    assert len(sink) == 1 and "promoted" in sink[0]["text"]
    # the token appears nowhere: params, tags, artifacts, log file, console
    every_run = client.search_runs([parent.info.experiment_id])
    for run in every_run:
        assert TOKEN not in json.dumps({**run.data.params, **run.data.tags})
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id)))
        for file in local.rglob("*"):
            if file.is_file():
                assert TOKEN.encode() not in file.read_bytes(), file
    assert TOKEN not in (tmp_path / "run.log").read_text()
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/slow", 1, "did not answer within 1 s after 1 retries"),
        ("/error", 1, "HTTP 500 after 1 retries; try again later."),
        (
            "/unauthorized",
            1,
            "the server refused access (HTTP 401); set a valid token in the environment variable NLU_MLFLOW_DATA_TOKEN.",
        ),
        ("/truncated", 1, "the download was cut short"),
        ("/invalid", 2, "not readable as Rasa NLU data"),
    ],
    ids=["slow", "500", "401", "truncated", "invalid"],
)
@pytest.mark.usefixtures("token")
def test_remote_failures_fail_the_parent_run_and_register_nothing(
    tmp_path, tracking_uri, data_server, sink, path, code, message
):
    DataHandler.hits.pop(path, None)
    result = invoke(tmp_path, tracking_uri, data_server + path)
    assert result.exit_code == code, result.output
    assert message in result.output
    [parent] = workflow_runs(tracking_uri)
    assert parent.info.status == "FAILED"
    assert message in parent.data.tags[c.TAG_ERROR]
    assert no_version_registered(tracking_uri)
    assert len(sink) == 1 and sink[0]["text"].startswith("nlu-mlflow run FAILED")
    assert TOKEN not in result.output + json.dumps(parent.data.tags) + (tmp_path / "run.log").read_text()
    if path == "/error":
        assert DataHandler.hits[path] == 2  # the first try and one retry


@pytest.mark.slow
def test_credentials_and_query_strings_of_the_data_url_are_written_nowhere(
    tmp_path, tracking_uri, data_server
):
    host = data_server.removeprefix("http://")
    url = (
        f"http://alice:PASSWORD-9f2@{host}/signed/train.yml?X-Amz-Signature=SIG-77ab&X-Amz-Credential=CRED-5e"
    )
    summary, report = tmp_path / "summary.json", tmp_path / "report.md"
    result = invoke(
        tmp_path, tracking_uri, url, "--summary-json", str(summary), "--report-md", str(report), "-v"
    )
    assert result.exit_code == 0, result.output
    [parent] = workflow_runs(tracking_uri)
    assert f"http://alice:***@{host}/signed/train.yml" in parent.data.tags[c.MLFLOW_RUN_NOTE]
    secrets = ("PASSWORD-9f2", "SIG-77ab", "CRED-5e")
    client = mlflow.MlflowClient(tracking_uri)
    written = [result.output, (tmp_path / "run.log").read_text(), summary.read_text(), report.read_text()]
    for run in client.search_runs([parent.info.experiment_id]):
        written.append(json.dumps({**run.data.params, **run.data.tags}))
        written += [json.dumps(d.dataset.source) for d in run.inputs.dataset_inputs]
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id)))
        written += [f.read_bytes().decode(errors="replace") for f in local.rglob("*") if f.is_file()]
    for version in client.search_model_versions():
        written.append(json.dumps([version.tags, version.description, version.source]))
    leaks = [
        (s, text[max(0, text.find(s) - 80) : text.find(s) + 20])
        for text in written
        for s in secrets
        if s in text
    ]
    assert leaks == []


def test_a_second_run_is_refused_while_the_lock_is_held(tmp_path, tracking_uri):
    lock = tmp_path / "run.lock"
    with runlock.exclusive(lock):
        result = invoke(tmp_path, tracking_uri, str(PIZZA / "train.yml"))
    assert result.exit_code == EXIT_LOCKED
    assert "another nlu-mlflow run is in progress (pid" in result.output
    assert workflow_runs(tracking_uri) == []
    with runlock.exclusive(lock):  # released: can be taken again
        pass


class RedirectHandler(BaseHTTPRequestHandler):
    """``/away?to=URL`` redirects there; ``/data`` serves the training data; every request's headers are kept."""

    seen: list[tuple[str, str, dict]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        RedirectHandler.seen.append((self.headers["Host"], self.path, dict(self.headers)))
        if self.path.startswith("/away?to="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/away?to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(TRAIN_YAML)))
        self.end_headers()
        self.wfile.write(TRAIN_YAML)


@pytest.mark.parametrize("header", ["Authorization", "X-Export-Token"])
def test_the_token_is_not_sent_to_another_host_after_a_redirect(tmp_path, monkeypatch, header):
    monkeypatch.setenv("NLU_MLFLOW_DATA_TOKEN", TOKEN)
    server, url = serve(RedirectHandler)
    other = url.replace("127.0.0.1", "localhost")  # the same server under another host name
    try:
        RedirectHandler.seen.clear()
        same = remote.RemoteSource(f"{url}/away?to={url}/data", header=header)
        assert remote.fetch(same, tmp_path / "same").read_bytes() == TRAIN_YAML
        assert [TOKEN in json.dumps(h) for _, _, h in RedirectHandler.seen] == [True, True]  # same host: kept
        RedirectHandler.seen.clear()
        away = remote.RemoteSource(f"{url}/away?to={other}/data", header=header)
        assert remote.fetch(away, tmp_path / "away").read_bytes() == TRAIN_YAML
        [(first_host, _, first), (second_host, _, second)] = RedirectHandler.seen
        assert (first_host.startswith("127.0.0.1"), second_host.startswith("localhost")) == (True, True)
        assert (TOKEN in json.dumps(first), TOKEN in json.dumps(second)) == (True, False)
    finally:
        server.shutdown()
