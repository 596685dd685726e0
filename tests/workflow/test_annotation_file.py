"""Annotation without Label Studio, through the CLI: `inbox export` writes the top items with the served parse
as a suggestion, a person edits the file, `inbox import` writes Rasa NLU YAML that Rasa's loader reads; the
same file twice adds nothing; a crash between writing the file and recording it is recovered, not applied
twice; refusals name the fix; `--git-branch` commits without touching the checkout."""

from __future__ import annotations

import csv
import subprocess

import pytest
import yaml

from nlu_mlflow.live import inbox_store as s
from nlu_mlflow.live.inbox_store import InboxStore
from nlu_mlflow.rasa.data import load_file, load_nlu
from nlu_mlflow.workflow.inputs import live_part
from tests.helpers.cli import invoke
from tests.helpers.inbox_items import add_item, pizza_copy
from tests.helpers.servers import free_port

pytestmark = pytest.mark.slow  # loads the Rasa project (domain, stories) on every command


@pytest.fixture()
def setup(tmp_path):
    project = pizza_copy(tmp_path)
    url = f"sqlite:///{tmp_path / 'inbox.db'}"
    store = InboxStore(url)
    ids = [
        add_item(store, "can i pay with [EMAIL] points", score=3.0),
        add_item(store, "two large margheritas for tonight", "purchase", 0.41,
                 [{"start": 4, "end": 9, "entity": "size", "value": "large"}], score=2.0),
        add_item(store, "blah blah", score=1.0),
    ]  # fmt: skip
    return project, url, store, ids


def export(tmp_path, project, url, fmt="csv"):
    out = tmp_path / f"todo.{fmt}"
    done = invoke(
        ["inbox", "export", "--out", str(out), "--format", fmt, "--project", str(project), "--inbox", url]
    )
    assert done.exit_code == 0, done.output
    return out


def test_export_edit_import_writes_rasa_yaml_once(tmp_path, setup):
    project, url, store, (pay, order, noise) = setup
    out = export(tmp_path, project, url)
    rows = list(csv.DictReader(out.open()))
    assert [int(r["item_id"]) for r in rows] == [pay, order, noise]  # the inbox's order
    assert rows[1]["intent"] == "purchase" and rows[1]["text"] == "two [large](size) margheritas for tonight"
    rows[0].update(intent="faq/payment")
    rows[1].update(text="two [large](size) [margheritas](product) for [tonight](date_ref)")
    rows[2].update(skip="yes")
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = invoke(
        ["inbox", "import", str(out), "--project", str(project), "--inbox", url, "--annotator", "ann"]
    )
    assert done.exit_code == 0, done.output
    assert "3 new annotation(s) (1 skipped by the annotator); wrote 2 into" in done.output
    [written] = (project / "data" / "nlu" / "annotated").glob("*.yml")
    examples = {m.get("text"): m for m in load_file(written).intent_examples}  # Rasa's own loader
    assert examples["can i pay with [EMAIL] points"].get("intent_response_key") == "faq/payment"
    assert [(e["entity"], e["value"]) for e in examples["two large margheritas for tonight"].get("entities")] == [
        ("size", "large"), ("product", "margheritas"), ("date_ref", "tonight"),
    ]  # fmt: skip
    assert store.item(noise).state == s.SKIPPED and store.item(pay).state == s.WRITTEN
    assert {a.annotator for a in store.annotations()} == {"ann"}
    again = invoke(["inbox", "import", str(out), "--project", str(project), "--inbox", url])
    assert (
        again.exit_code == 0 and "0 new annotation(s)" in again.output and "no file written" in again.output
    )
    assert len(list(written.parent.glob("*.yml"))) == 1
    live = live_part(
        load_nlu(project / "data", project=True)
    )  # what the next `nlu-mlflow run` logs as "live"
    assert live.source.startswith("live traffic: 1 pull(s), 2 annotated message(s) in ")
    assert sorted(live.to_frame()["text"]) == [
        "can i pay with [EMAIL] points",
        "two large margheritas for tonight",
    ]


def test_a_live_test_share_goes_to_live_test_data_never_to_training_data(tmp_path, setup):
    project, url, _, _ = setup
    out = export(tmp_path, project, url)
    rows = list(csv.DictReader(out.open()))
    rows[0].update(intent="faq/payment")
    rows[2].update(skip="yes")
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    args = ["inbox", "import", str(out), "--project", str(project), "--inbox", url, "--live-test-share", "1"]
    done = invoke(args)
    assert done.exit_code == 0, done.output
    assert "2 kept apart as live test data" in done.output
    [kept_apart] = (project / "live_tests").glob("*.yml")
    assert len(load_file(kept_apart).intent_examples) == 2  # Rasa's loader reads it as NLU data
    assert not list((project / "data").rglob("live-*.yml"))  # nothing of it is training data
    assert live_part(load_nlu(project / "data", project=True)) is None


def test_a_crash_after_writing_the_file_is_recovered_not_applied_twice(tmp_path, setup, monkeypatch):
    project, url, store, (pay, _, _) = setup
    out = export(tmp_path, project, url, "yaml")
    document = yaml.safe_load(out.read_text())
    document["items"] = [dict(document["items"][0], intent="faq/payment")]
    out.write_text(yaml.safe_dump(document))

    def crash(self, ids, file):  # noqa: ARG001
        raise KeyboardInterrupt("killed between writing the file and recording it")

    with monkeypatch.context() as patched:
        patched.setattr(InboxStore, "mark_written", crash)
        done = invoke(["inbox", "import", str(out), "--project", str(project), "--inbox", url])
    assert done.exit_code != 0
    folder = project / "data" / "nlu" / "annotated"
    [first] = folder.glob("*.yml")
    assert len(store.unwritten_annotations()) == 1  # stored, not recorded as written
    done = invoke(["inbox", "import", str(out), "--project", str(project), "--inbox", url])
    assert done.exit_code == 0, done.output
    assert "1 found written by an earlier pull" in done.output and "wrote 0" in done.output
    assert list(folder.glob("*.yml")) == [first] and store.unwritten_annotations() == []
    assert [a.written_file for a in store.annotations()] == [str(first)]


def test_an_intent_or_entity_the_domain_lacks_is_refused_and_nothing_is_written(tmp_path, setup):
    project, url, store, (pay, order, _) = setup
    out = tmp_path / "edited.yml"
    out.write_text(yaml.safe_dump({"items": [
        {"item_id": pay, "intent": "order_drink", "text": "can i pay with [EMAIL] points"},
        {"item_id": order, "intent": "purchase", "text": "two [large](drink_size) margheritas for tonight"},
    ]}))  # fmt: skip
    done = invoke(["inbox", "import", str(out), "--project", str(project), "--inbox", url])
    assert done.exit_code == 2
    assert f"row 1: intent 'order_drink' is not in {project / 'domain.yml'}" in done.output
    assert "add it under `intents:`" in done.output and "entity 'drink_size' is not in" in done.output
    assert not (project / "data" / "nlu" / "annotated").exists() and store.annotations() == []


def test_a_text_the_training_data_has_under_another_intent_is_reported_not_written(tmp_path, setup):
    project, url, store, _ = setup
    known = add_item(store, "hey there", score=9.0)  # data/nlu/nlu.yml: greet
    out = tmp_path / "edited.yml"
    out.write_text(yaml.safe_dump({"items": [{"item_id": known, "intent": "goodbye", "text": "hey there"}]}))
    done = invoke(["inbox", "import", str(out), "--project", str(project), "--inbox", url])
    assert done.exit_code == 0, done.output
    assert "'hey there' is labelled 'greet' in" in done.output and "1 not written" in done.output
    assert not (project / "data" / "nlu" / "annotated").exists()


def test_git_branch_commits_the_file_for_review(tmp_path, setup):
    project, url, store, (pay, _, _) = setup

    def run(*a):
        return subprocess.run(
            ["git", "-C", str(project), *a], check=True, capture_output=True, text=True
        ).stdout

    run("init", "-q", "-b", "main")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "assistant")
    out = tmp_path / "edited.yml"
    out.write_text(
        yaml.safe_dump(
            {"items": [{"item_id": pay, "intent": "faq/payment", "text": "can i pay with [EMAIL] points"}]}
        )
    )
    args = [
        "inbox",
        "import",
        str(out),
        "--project",
        str(project),
        "--inbox",
        url,
        "--git-branch",
        "live-data",
    ]
    done = invoke(args)
    assert done.exit_code == 0, done.output
    assert run("status", "--porcelain") == "" and run("symbolic-ref", "--short", "HEAD").strip() == "main"
    [name] = run("ls-tree", "-r", "--name-only", "live-data", "data/nlu/annotated").split()
    assert "- intent: faq/payment" in run("show", f"live-data:{name}")


def test_label_studio_down_or_a_refused_token_is_one_sentence_and_its_own_exit_status(tmp_path, setup):  # noqa: ARG001
    project, url, store, _ = setup
    down = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}", "LABEL_STUDIO_API_KEY": "k" * 40}
    for command in (["push", "--served"], ["pull"]):
        done = invoke(["inbox", *command, "--project", str(project), "--inbox", url], env=down)
        assert done.exit_code == 69, done.output
        assert "does not answer" in done.output and "start it (scripts/labelstudio.sh)" in done.output
        assert "k" * 40 not in done.output
    assert {i.state for i in store.items()} == {s.QUEUED}  # nothing marked pushed
    missing = invoke(
        ["inbox", "pull", "--project", str(project), "--inbox", url],
        env={"LABEL_STUDIO_URL": down["LABEL_STUDIO_URL"], "LABEL_STUDIO_API_KEY": ""},
    )
    assert missing.exit_code == 2 and "set LABEL_STUDIO_API_KEY" in missing.output


def test_forget_refuses_to_leave_a_senders_tasks_behind(tmp_path, setup):  # noqa: ARG001
    project, url, store, (pay, _, _) = setup
    store.mark_pushed([pay], [41])
    done = invoke(
        ["inbox", "forget", "user-1", "--inbox", url],
        env={"LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""},
    )
    assert done.exit_code != 0 and "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in done.output
    assert store.item(pay) is not None  # nothing erased
