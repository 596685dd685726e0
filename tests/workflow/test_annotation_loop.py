"""The loop with real parts: a first `nlu-mlflow run` puts the pizza assistant in production; inbox items go to
a real Label Studio (started by the test) with production's parse as pre-annotations; an annotator confirms,
relabels, fixes spans and skips through Label Studio's API; `inbox pull` writes YAML that Rasa's loader reads
(once, also after a crash between pulling and writing); `inbox forget` deletes a sender's task there; the next
`nlu-mlflow run` trains on the annotations and logs them as their own dataset."""

from __future__ import annotations

import json

import mlflow
import pytest

from nlu_mlflow.live import annotated
from nlu_mlflow.live import inbox_store as s
from nlu_mlflow.live.label_studio import LabelStudio
from nlu_mlflow.rasa.data import load_file
from tests.helpers import CONFIGS
from tests.helpers.cli import invoke
from tests.helpers.inbox_items import add_item, pizza_copy

pytestmark = pytest.mark.slow

MODEL = "pizza"


def run_args(home, project) -> list[str]:
    return [
        "run", "--project", str(project), "--configs", str(CONFIGS / "logreg_crf.yml"), "--no-project-config",
        "--epochs", "1", "--min-conversation-pass-rate", "0", "--model-name", MODEL,
        "--tracking-uri", f"sqlite:///{home / 'mlruns.db'}", "--lock-file", str(home / "run.lock"),
        "--summary-json", str(home / "summary.json"),
    ]  # fmt: skip


def candidate_datasets(home) -> dict[str, dict]:
    summary = json.loads((home / "summary.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlruns.db'}")
    parent = mlflow.get_run(summary["run_id"])
    [child, *_] = mlflow.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    return {d.dataset.name: {"source": json.loads(d.dataset.source), "profile": d.dataset.profile}
            for d in child.inputs.dataset_inputs}  # fmt: skip


def intent(name: str) -> dict:
    return {
        "id": "i",
        "from_name": "intent",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [name]},
    }


def span(region: str, start: int, end: int, label: str) -> dict:
    value = {"start": start, "end": end, "labels": [label]}
    return {"id": region, "from_name": "entity", "to_name": "text", "type": "labels", "value": value}


def killed(*args):  # noqa: ARG001
    raise KeyboardInterrupt("killed between pulling and writing")


def test_live_messages_become_training_data(tmp_path, label_studio, monkeypatch):
    home, project = tmp_path, pizza_copy(tmp_path)
    first = invoke(run_args(home, project))
    assert first.exit_code == 0, first.output
    assert "live" not in candidate_datasets(home)
    if (
        "production" not in mlflow.MlflowClient().get_registered_model(MODEL).aliases
    ):  # one epoch may miss a gate
        forced = [
            "promote",
            "1",
            "--force",
            "--model-name",
            MODEL,
            "--tracking-uri",
            f"sqlite:///{home / 'mlruns.db'}",
        ]
        assert invoke(forced).exit_code == 0
    inbox = f"sqlite:///{home / 'inbox.db'}"
    store = s.InboxStore(inbox)
    hours = add_item(store, "are you open on christmas day", sender="alice", score=4.0)
    order = add_item(store, "three medium pizzas for tomorrow", "purchase", 0.5, sender="bob", score=3.0)
    spam = add_item(store, "mail me at [EMAIL]", sender="bob", score=2.0)
    gone = add_item(store, "hello i am carol", "greet", 0.4, sender="carol", score=1.0)
    env = {**label_studio.env(), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlruns.db'}"}
    common = ["--project", str(project), "--inbox", inbox]

    pushed = invoke(["inbox", "push", *common, "--model-name", MODEL, "--limit", "10"], env=env)
    assert pushed.exit_code == 0, pushed.output
    assert "pushed 4 item(s)" in pushed.output and "model version 1" in pushed.output
    client = LabelStudio(label_studio.url, label_studio.token)
    tasks = {t["data"]["item_id"]: t for t in client.tasks(client.find_project("nlu-mlflow inbox").id)}
    predictions = {item: client.predictions(t["id"]) for item, t in tasks.items()}
    assert {p["model_version"] for found in predictions.values() for p in found} == {
        "1"
    }  # production parsed them
    assert all(len(found) == 1 and 0 < found[0]["score"] <= 1 for found in predictions.values())
    assert {store.item(i).state for i in (hours, order, spam, gone)} == {s.PUSHED}

    # the annotator: relabels one, confirms the other's intent and fixes its spans, skips the spam
    client.annotate(tasks[hours]["id"], [intent("faq/opening_hours")])
    client.annotate(
        tasks[order]["id"],
        [
            intent("purchase"),
            span("a", 0, 5, "quantity"),
            span("b", 6, 12, "size"),
            span("c", 20, 32, "date_ref"),
        ],
    )
    client.annotate(tasks[spam]["id"], [], cancelled=True)

    with monkeypatch.context() as crash:  # pulled into the inbox, then killed before the file is written
        crash.setattr(annotated, "write_atomically", killed)
        assert invoke(["inbox", "pull", *common], env=env).exit_code != 0
    folder = project / "data" / "nlu" / "annotated"
    assert not folder.exists() and len(store.unwritten_annotations()) == 2
    pulled = invoke(["inbox", "pull", *common], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert "wrote 2 into" in pulled.output
    [written] = folder.glob("*.yml")
    examples = {m.get("text"): m for m in load_file(written).intent_examples}  # Rasa's own loader
    assert examples["are you open on christmas day"].get("intent_response_key") == "faq/opening_hours"
    assert [(e["entity"], e["value"]) for e in examples["three medium pizzas for tomorrow"].get("entities")] == [
        ("quantity", "three"), ("size", "medium"), ("date_ref", "for tomorrow"),
    ]  # fmt: skip
    assert "mail me" not in written.read_text() and store.item(spam).state == s.SKIPPED
    again = invoke(["inbox", "pull", *common], env=env)
    assert "0 new annotation(s)" in again.output and list(folder.glob("*.yml")) == [written]

    forgot = invoke(["inbox", "forget", "carol", "--inbox", inbox], env=env)
    assert forgot.exit_code == 0, forgot.output
    assert gone not in {
        t["data"]["item_id"] for t in client.tasks(client.find_project("nlu-mlflow inbox").id)
    }

    second = invoke(run_args(home, project))
    assert second.exit_code == 0, second.output
    live = candidate_datasets(home)["live"]
    assert "live traffic: 1 pull(s), 2 annotated message(s)" in live["source"]["uri"]
    assert json.loads(live["profile"])["num_rows"] == 2
