"""Bad input is reported before any training, one sentence per problem naming file, item and fix."""

import pytest

from nlu_mlflow.decide import validation
from nlu_mlflow.rasa import data


def load(tmp_path, body, name="nlu.yml"):
    path = tmp_path / name
    path.write_text('version: "3.1"\nnlu:\n' + body)
    return data.load_nlu(path), path


def test_clean_demo_data_passes(pizza_train, pizza_test):
    assert validation.check_training_data(pizza_train.view, 2) == []
    assert validation.check_test_data(pizza_train.view, pizza_test.view) == []


def test_too_few_examples(tmp_path):
    loaded, path = load(
        tmp_path,
        "- intent: greet\n  examples: |\n    - hi\n    - hello\n- intent: bye\n  examples: |\n    - bye\n",
    )
    [problem] = validation.too_few_examples(loaded.view, 2)
    assert problem.startswith(str(path))
    assert (
        "intent 'bye' has 1 example(s), fewer than the 2 needed; add examples or remove the intent."
        in problem
    )


@pytest.mark.parametrize(
    "example", ["buy a [pizza(product)", "buy a [pizza]product)", "buy a pizza](product)"]
)
def test_broken_entity_annotation(tmp_path, example):
    loaded, path = load(tmp_path, f"- intent: buy\n  examples: |\n    - {example}\n    - buy it\n")
    [problem] = validation.broken_annotations(loaded.view)
    assert problem.startswith(f"{path}: example ")
    assert "broken entity annotation; write entities as [text](entity_type)" in problem


def test_same_text_under_two_intents(tmp_path):
    (tmp_path / "d").mkdir()
    load(tmp_path / "d", "- intent: greet\n  examples: |\n    - hello  there\n    - hi\n", "a.yml")
    load(tmp_path / "d", "- intent: bye\n  examples: |\n    - hello there\n    - bye\n", "b.yml")
    loaded = data.load_nlu(tmp_path / "d")
    [problem] = validation.conflicting_texts(loaded.view)
    assert "example 'hello there' is labelled with two intents" in problem
    assert "'bye' in " in problem and "b.yml" in problem and "'greet' in " in problem and "a.yml" in problem
    assert problem.endswith(
        "keep it under one intent only, or pass --allow-conflicts to train with it (Rasa only warns)."
    )
    assert validation.case_conflicts(loaded.view) == []
    assert validation.check_training_data(loaded.view, 1, allow_conflicts=True) == []


def test_texts_differing_only_in_case_are_a_warning_not_an_error(tmp_path):
    loaded, _ = load(
        tmp_path,
        "- intent: greet\n  examples: |\n    - Hello\n    - hi\n- intent: bye\n  examples: |\n    - hello\n    - bye\n",
    )
    assert validation.conflicting_texts(loaded.view) == []
    [warning] = validation.case_conflicts(loaded.view)
    assert "examples 'hello' differ only in case but are labelled with two intents" in warning


def test_test_intents_unknown_to_training(tmp_path):
    train, _ = load(tmp_path, "- intent: greet\n  examples: |\n    - hi\n    - hello\n", "train.yml")
    test, test_path = load(tmp_path, "- intent: order\n  examples: |\n    - a pizza\n", "test.yml")
    [problem] = validation.unknown_test_intents(train.view, test.view)
    assert problem.startswith(
        f"{test_path}: intent 'order' (1 test example(s)) does not occur in the training data"
    )
    assert problem.endswith("add training examples for it or remove it from the test data.")
