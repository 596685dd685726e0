"""The Label Studio client against a real Label Studio (started once per session by the `label_studio`
fixture): a project from the domain's labeling config, tasks with pre-annotations, an annotator's annotation
read back as an example, and the project's own errors for a server that is down or a refused token."""

from __future__ import annotations

import json

import pytest

from nlu_mlflow.decide import labeling
from nlu_mlflow.live.label_studio import LabelStudio, LabelStudioDown, LabelStudioRefused
from tests.helpers import servers

pytestmark = pytest.mark.slow

SCHEMA = labeling.Schema(
    ("faq/opening_hours", "greet", "purchase"),
    (labeling.EntityKind("city", roles=("departure", "destination")), labeling.EntityKind("size")),
)


def test_a_project_gets_tasks_with_predictions_and_gives_back_the_annotation(label_studio):
    client = LabelStudio(label_studio.url, label_studio.token)
    project = client.ensure_project("client test", labeling.label_config(SCHEMA))
    assert client.ensure_project("client test", labeling.label_config(SCHEMA)).id == project.id  # found again
    text = "a large pizza to Berlin"
    parse = {
        "text": text,
        "intent": {"name": "purchase", "confidence": 0.61},
        "entities": [{"start": 2, "end": 7, "entity": "size", "value": "large"}],
    }
    pre = labeling.prediction(parse, SCHEMA, "3")
    [task_id] = client.import_tasks(
        project.id, [{"data": {"text": text, "item_id": 7}, "predictions": [pre.to_json()]}]
    )
    corrected = [r for r in pre.result if r["from_name"] != "intent"] + [
        {"id": "i", "from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": ["purchase"]}},
        {"id": "c", "from_name": "entity", "to_name": "text", "type": "labels",
         "value": {"start": 17, "end": 23, "text": "Berlin", "labels": ["city"]}},
        {"id": "c", "from_name": "role_city", "to_name": "text", "type": "choices",
         "value": {"start": 17, "end": 23, "text": "Berlin", "choices": ["destination"]}},
    ]  # fmt: skip
    client.annotate(task_id, corrected)
    [task] = client.tasks(project.id)
    assert task["data"]["item_id"] == 7
    [stored] = client.predictions(task_id)
    assert stored["model_version"] == "3" and stored["score"] == pytest.approx(0.61)
    assert stored["result"] == pre.result
    [annotation] = task["annotations"]
    example = labeling.example_of(task["data"]["text"], annotation["result"])
    assert example == labeling.Example(
        text,
        "purchase",
        (
            {"start": 2, "end": 7, "value": "large", "entity": "size"},
            {"start": 17, "end": 23, "value": "Berlin", "entity": "city", "role": "destination"},
        ),
    )
    assert client.delete_task(task_id) is True
    assert client.delete_task(task_id) is False  # gone already: not an error
    assert client.tasks(project.id) == []


def test_a_refused_token_is_one_sentence_without_the_token(label_studio):
    wrong = "f" * 40
    with pytest.raises(LabelStudioRefused) as caught:
        LabelStudio(label_studio.url, wrong).find_project("x")
    assert "LABEL_STUDIO_API_KEY" in str(caught.value) and wrong not in str(caught.value)
    assert label_studio.token not in json.dumps(str(caught.value))


def test_a_server_that_is_down_names_the_start_script():
    with pytest.raises(LabelStudioDown, match=r"does not answer .* start it \(scripts/labelstudio.sh\)"):
        LabelStudio(f"http://127.0.0.1:{servers.free_port()}", "t" * 40, timeout=5).find_project("x")
