"""The Rasa pyfunc: logged and registered in a real SQLite store, loaded in-process, in a fresh
process and behind ``mlflow models serve``; plus the batch parsing it relies on."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import evaluation, inference
from nlu_mlflow.rasa.archive import check_archive
from nlu_mlflow.tracking import models, pyfunc_model

REGISTERED = "rasa-nlu-test"
MODEL_URI = f"models:/{REGISTERED}/1"
PURCHASE = "i want a large pepperoni pizza for tomorrow"
TWO_TEXTS = ["hello there", PURCHASE]
TEXTS = ["hi", PURCHASE, "bye bye", "where is my order?", "are you a bot?", "thanks a lot"]
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    root: Path
    info: models.LoggedModel


def _log_and_register(archive: Path, root: Path, name: str) -> Store:
    uri = f"sqlite:///{root / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = models.log_model(archive)
    mlflow.register_model(info.model_uri, name)
    return Store(uri, root, info)


@pytest.fixture(scope="module")
def registered(logreg_model, tmp_path_factory) -> Store:
    """The logreg model logged into a fresh store and registered as version 1 of ``rasa-nlu-test``."""
    previous = mlflow.get_tracking_uri()
    store = _log_and_register(logreg_model.archive, tmp_path_factory.mktemp("pyfunc_store"), REGISTERED)
    mlflow.set_tracking_uri(previous)
    return store


@pytest.fixture()
def store(registered):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registered.tracking_uri)
    yield registered
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def logreg_processor(logreg_model):
    return evaluation.load_processor(logreg_model.archive)


@pytest.fixture(scope="module")
def pizza_intents(pizza_train) -> set[str]:
    return set(pizza_train.training_data.intents)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")  # full floats (to_json would round to 10 digits)


def _check_output(records: list[dict], intents: set[str]) -> None:
    for row in records:
        assert set(row) == set(inference.OUTPUT_COLUMNS)
        assert row["intent"] in intents
        assert 0.0 < row["confidence"] <= 1.0
        for entity in json.loads(row["entities"]):
            assert set(entity) == set(inference.ENTITY_KEYS)
        ranking = json.loads(row["intent_ranking"])
        assert ranking[0] == {"name": row["intent"], "confidence": pytest.approx(row["confidence"])}


# --- inference: batch parsing and the output table ---


def test_parse_texts_keeps_order_and_matches_one_by_one(logreg_processor):
    batch = inference.parse_texts(logreg_processor, TEXTS)
    single = [inference.parse_texts(logreg_processor, [text])[0] for text in TEXTS]
    assert [p["text"] for p in batch] == TEXTS
    assert [p["intent"] for p in batch] == [p["intent"] for p in single]


def test_parse_texts_works_inside_a_running_event_loop(logreg_processor):
    async def notebook_cell():
        return inference.parse_texts(logreg_processor, TEXTS[:2])

    parses = asyncio.run(notebook_cell())
    assert [p["text"] for p in parses] == TEXTS[:2]


def test_to_frame_encodes_entities_and_ranking_as_json():
    parse = {
        "text": "a large pizza",
        "intent": {"name": "purchase", "confidence": 0.9},
        "entities": [
            {"entity": "size", "value": "large", "start": 2, "end": 7, "extractor": "RegexEntityExtractor"},
            {
                "entity": "product",
                "value": "pizza",
                "start": 8,
                "end": 13,
                "confidence_entity": 0.8,
                "extractor": "CRFEntityExtractor",
                "processors": ["EntitySynonymMapper"],
            },
        ],
        "intent_ranking": [{"name": "purchase", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}],
    }
    row = inference.to_frame([parse]).iloc[0]
    assert (row["intent"], row["confidence"]) == ("purchase", 0.9)
    assert json.loads(row["entities"]) == [
        {"entity": "size", "value": "large", "start": 2, "end": 7, "confidence": None,
         "extractor": "RegexEntityExtractor"},
        {"entity": "product", "value": "pizza", "start": 8, "end": 13, "confidence": 0.8,
         "extractor": "CRFEntityExtractor"},
    ]  # fmt: skip
    assert json.loads(row["intent_ranking"]) == parse["intent_ranking"]


def test_to_frame_of_no_parses_has_the_output_columns():
    assert list(inference.to_frame([]).columns) == list(inference.OUTPUT_COLUMNS)


# --- inputs and archives ---


@pytest.mark.parametrize(
    ("model_input", "message"),
    [
        (pd.DataFrame({"utterance": ["hi"]}), "send a 'text' column"),
        (pd.DataFrame({"text": ["hi", None]}), "rows [1] are not strings"),
        ("hi", "model input is a str"),
    ],
)
def test_bad_input_is_refused_with_the_fix(model_input, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pyfunc_model.input_texts(model_input)


def test_an_archive_with_a_member_outside_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValueError, match="outside.txt"):
        check_archive(archive)


def test_trained_archive_passes_the_check(logreg_model):
    check_archive(logreg_model.archive)


# --- the logged and registered model ---


def test_registered_model_loads_and_predicts_in_a_fresh_process(store, tmp_path, pizza_intents):
    script = textwrap.dedent(
        f"""
        import json, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({MODEL_URI!r})
        import nlu_mlflow
        out = model.predict(pd.DataFrame({{"text": {TWO_TEXTS!r}}}))
        rows = out.to_dict(orient="records")
        print(json.dumps({{"package": nlu_mlflow.__file__, "rows": rows}}))
        """
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    print(f"fresh process: {time.perf_counter() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert not Path(answer["package"]).is_relative_to(REPO)  # imported from the model's code/ folder
    assert len(answer["rows"]) == 2
    _check_output(answer["rows"], pizza_intents)
    assert "processor.message.parse" not in done.stdout + done.stderr  # no per-message debug lines


@pytest.mark.usefixtures("store")
def test_list_and_frame_inputs_give_one_row_per_text_in_order(logreg_processor, pizza_intents):
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED, c.ALIAS_PRODUCTION, "1")
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED}@{c.ALIAS_PRODUCTION}")
    from_frame = model.predict(pd.DataFrame({"text": TEXTS}))
    # the named `text` input schema makes MLflow refuse a bare list; the Python model takes one
    from_list = model.unwrap_python_model().predict(None, TEXTS)
    reversed_ = model.predict(pd.DataFrame({"text": list(reversed(TEXTS))}))
    direct = inference.parse_texts(logreg_processor, TEXTS)

    assert len(from_frame) == len(TEXTS)
    pd.testing.assert_frame_equal(from_list, from_frame)
    pd.testing.assert_frame_equal(reversed_.iloc[::-1].reset_index(drop=True), from_frame)
    assert from_frame["intent"].tolist() == [p["intent"]["name"] for p in direct]
    _check_output(_records(from_frame), pizza_intents)


@pytest.mark.usefixtures("store")
def test_logged_model_has_signature_input_example_and_pins():
    info = mlflow.models.Model.load(MODEL_URI)
    assert info.signature.inputs.input_names() == ["text"]
    assert info.signature.outputs.input_names() == list(inference.OUTPUT_COLUMNS)
    example = mlflow.models.Model.load(MODEL_URI).load_input_example()
    assert example["text"].tolist() == list(models.INPUT_EXAMPLE)
    requirements = mlflow.pyfunc.get_model_dependencies(MODEL_URI)
    pins = Path(requirements).read_text().split()
    assert {p.split("==")[0] for p in pins} >= {"rasa", "mlflow", "tensorflow"}


@pytest.mark.usefixtures("store")
def test_archive_path_returns_the_logged_archive(logreg_model, tmp_path):
    path = models.archive_path(MODEL_URI, tmp_path)
    assert path.read_bytes() == logreg_model.archive.read_bytes()


@pytest.mark.slow
def test_logging_a_model_does_not_load_the_rasa_model(logreg_model, tmp_path, monkeypatch):
    """``mlflow.pyfunc.log_model`` with an input example loads the model once more to validate it (tens of
    seconds for DIET); ours keeps the input example and signature without that load."""
    loads = []
    monkeypatch.setattr(pyfunc_model.RasaNLUModel, "load_context", lambda self, context: loads.append(1))  # noqa: ARG005
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    try:
        experiment = mlflow.create_experiment("no-load", artifact_location=(tmp_path / "a").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = models.log_model(logreg_model.archive)
        logged = mlflow.get_logged_model(info.model_id)
        example = mlflow.models.Model.load(info.model_uri).load_input_example()
    finally:
        mlflow.set_tracking_uri(previous)
    assert loads == []
    assert str(logged.status) == "READY"
    assert example["text"].tolist() == list(models.INPUT_EXAMPLE)


def test_diet_model_predicts_a_batch_like_one_by_one(diet_model, tmp_path, pizza_intents):
    previous = mlflow.get_tracking_uri()
    try:
        diet_store = _log_and_register(diet_model.archive, tmp_path, "rasa-nlu-diet")
        model = mlflow.pyfunc.load_model(diet_store.info.model_uri)
        texts = TEXTS * 4
        started = time.perf_counter()
        batch = model.predict(pd.DataFrame({"text": texts}))
        print(f"DIET batch of {len(texts)}: {time.perf_counter() - started:.2f} s")
        single = pd.concat([model.predict(pd.DataFrame({"text": [t]})) for t in texts], ignore_index=True)
    finally:
        mlflow.set_tracking_uri(previous)
    assert batch["intent"].tolist() == single["intent"].tolist()
    assert batch["confidence"].tolist() == pytest.approx(single["confidence"].tolist(), abs=1e-5)
    _check_output(_records(batch), pizza_intents)


# --- serving ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_ping(url: str, server: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    pytest.fail(f"mlflow models serve did not answer /ping within {seconds} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker, started by this test
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)


@pytest.mark.slow
def test_served_model_answers_invocations_like_in_process(store, tmp_path, pizza_intents):
    expected = _records(mlflow.pyfunc.load_model(MODEL_URI).predict(pd.DataFrame({"text": TWO_TEXTS})))
    assert expected[1]["intent"] == "purchase"

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [Path(sys.executable).with_name("mlflow"), "models", "serve", "-m", MODEL_URI,
               "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"]  # fmt: skip
    # the server execs `uvicorn` from PATH: the environment's bin folder must be on it (an activated venv)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri, "PATH": path}
    started = time.perf_counter()
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_ping(url, server, log)
        ready = time.perf_counter() - started
        response = requests.post(
            f"{url}/invocations", json={"dataframe_records": [{"text": t} for t in TWO_TEXTS]}, timeout=120
        )
    finally:
        _stop(server)

    assert response.status_code == 200, response.text
    assert "processor.message.parse" not in log.read_text()  # no per-message debug lines
    predictions = response.json()["predictions"]
    print(f"served after {ready:.1f} s:", json.dumps(predictions, indent=1))
    _check_output(predictions, pizza_intents)
    assert predictions == expected
    assert predictions[1]["intent"] == "purchase"
    products = [e["value"] for e in json.loads(expected[1]["entities"]) if e["entity"] == "product"]
    if products:  # the logreg+CRF model found the product in-process: the served answer must too
        assert "pepperoni pizza" in products


def test_an_mlmodel_path_leaving_the_model_folder_is_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "outside.tar.gz").write_bytes(b"not in the model folder")
    mlmodel = {
        "flavors": {"python_function": {"artifacts": {c.ARTIFACT_ARCHIVE: {"path": "../outside.tar.gz"}}}}
    }
    (model / "MLmodel").write_text(json.dumps(mlmodel))  # JSON is YAML
    with pytest.raises(ValueError, match="leaves the model folder"):
        models.archive_path(model.as_uri(), tmp_path / "download")


@pytest.mark.slow
def test_a_whole_assistant_is_a_pyfunc_that_parses_texts(assistant_model, tmp_path):
    """A full archive (NLU and dialogue policies) is wrapped as is; predict parses texts as for NLU models."""
    store = _log_and_register(assistant_model.archive, tmp_path, "assistant")
    previous = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(store.tracking_uri)
        model = mlflow.pyfunc.load_model("models:/assistant/1")
        frame = model.predict(pd.DataFrame({"text": ["hello there", "do you have vegan pizza"]}))
    finally:
        mlflow.set_tracking_uri(previous)
    assert list(frame["intent"]) == ["greet", "faq"]
    archive = models.archive_path(f"{store.info.model_uri}", tmp_path / "download")
    from nlu_mlflow.rasa.archive import archive_training_type

    assert archive_training_type(archive) == "both"
