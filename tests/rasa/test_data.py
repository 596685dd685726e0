from collections import Counter

import pytest

from nlu_mlflow.decide import validation
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import data
from tests.helpers import PIZZA


def write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text('version: "3.1"\nnlu:\n' + body)
    return path


def test_shipped_demo_data_is_big_enough(pizza_train, pizza_test):
    intents = Counter(m.get("intent") for m in pizza_train.examples)
    entity_types = {e["entity"] for m in pizza_train.examples for e in m.get("entities") or []}
    assert len(intents) >= 8
    assert len(entity_types) >= 3
    assert len(pizza_train.examples) + len(pizza_test.examples) >= 150
    assert {"greet", "purchase"} <= set(intents)
    assert {"product", "date_ref"} <= entity_types


def test_digest_ignores_order_and_files_but_not_content(tmp_path):
    a = write(tmp_path, "a.yml", "- intent: greet\n  examples: |\n    - hi\n    - hello\n")
    b = write(tmp_path, "b.yml", "- intent: greet\n  examples: |\n    - hello\n    - hi\n")
    c = write(tmp_path, "c.yml", "- intent: greet\n  examples: |\n    - hello\n    - hey\n")
    assert data.load_nlu(a).digest == data.load_nlu(b).digest
    assert data.load_nlu(a).digest != data.load_nlu(c).digest


def test_folder_is_loaded_file_by_file(tmp_path):
    write(tmp_path, "a.yml", "- intent: greet\n  examples: |\n    - hi\n    - hello\n")
    write(tmp_path, "b.yml", "- intent: bye\n  examples: |\n    - bye\n    - ciao\n")
    loaded = data.load_nlu(tmp_path)
    assert len(loaded.examples) == 4
    assert [p.rsplit("/", 1)[-1] for p in loaded.files] == ["a.yml", "b.yml"]


def test_project_data_folder_uses_nlu_and_recognises_stories_and_rules(tmp_path):
    write(tmp_path, "nlu.yml", "- intent: greet\n  examples: |\n    - hi\n    - hello\n")
    nested = tmp_path / "core"
    nested.mkdir()
    (nested / "stories.yml").write_text(
        'version: "3.1"\nstories:\n- story: hi\n  steps:\n  - intent: greet\n  - action: utter_greet\n'
    )
    (tmp_path / "rules.yml").write_text(
        'version: "3.1"\nrules:\n- rule: hi\n  steps:\n  - intent: greet\n  - action: utter_greet\n'
    )
    loaded = data.load_nlu(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in loaded.files] == ["nlu.yml"]
    assert len(loaded.examples) == 2


def test_folder_of_only_stories_is_refused_with_a_fix(tmp_path):
    (tmp_path / "rules.yml").write_text(
        'version: "3.1"\nrules:\n- rule: hi\n  steps:\n  - intent: greet\n  - action: utter_greet\n'
    )
    with pytest.raises(InputError, match="only stories/rules files; point --data"):
        data.load_nlu(tmp_path)


def test_broken_file_still_named(tmp_path):
    (tmp_path / "bad.yml").write_text("stories: [unclosed\n")
    with pytest.raises(InputError, match="bad.yml"):
        data.load_nlu(tmp_path)


def test_split_is_seeded_and_keeps_every_intent(pizza_train):
    train1, test1 = data.split(pizza_train, 0.25, seed=1)
    train2, test2 = data.split(pizza_train, 0.25, seed=1)
    _, test3 = data.split(pizza_train, 0.25, seed=2)
    assert test1.digest == test2.digest and train1.digest == train2.digest
    assert test1.digest != test3.digest
    assert len(train1.examples) + len(test1.examples) == len(pizza_train.examples)
    assert {m.get("intent") for m in test1.examples} == {m.get("intent") for m in pizza_train.examples}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_fraction_out_of_range(pizza_train, fraction):
    with pytest.raises(InputError, match="--test-fraction"):
        data.split(pizza_train, fraction, seed=1)


def test_overlap_is_case_and_space_insensitive(tmp_path):
    train = data.load_nlu(
        write(tmp_path, "t.yml", "- intent: greet\n  examples: |\n    - Hello there\n    - hi\n")
    )
    test = data.load_nlu(
        write(tmp_path, "s.yml", "- intent: greet\n  examples: |\n    - hello  there\n    - hey\n")
    )
    assert validation.overlapping_texts(train.view, test.view) == ["hello  there"]


def test_frame_has_text_intent_entities():
    frame = data.load_nlu(PIZZA / "train.yml").to_frame()
    assert list(frame.columns) == ["text", "intent", "entities"]
    assert frame["entities"].str.contains('"entity": "product"').any()
