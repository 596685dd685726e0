"""A whole Rasa project read as `rasa train` reads it, checked before training, trained and tested as a whole
assistant; Core and response-selection metrics pinned to `rasa test core` / `rasa test nlu`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from nlu_mlflow import constants as c
from nlu_mlflow.decide import metrics as m
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import conversations, evaluation, fast_load
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.workflow import inputs, settings
from tests.helpers import CONFIGS, PIZZA_PROJECT, SHARED_PROJECTS
from tests.helpers.compare import differences, rasa_test_core, rasa_test_nlu_out


def copy_project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(PIZZA_PROJECT, target)
    return target


def prepare(project: Path, **extra):
    values = {"project": project, "configs": CONFIGS / "logreg_crf.yml", "epochs": 1, **extra}
    return inputs.prepare(settings.build(values))


def test_project_is_read_with_its_nested_data_and_tests(pizza_project):
    assert pizza_project.has_core
    assert pizza_project.retrieval_intents == ["faq"]
    assert {p.name for p in pizza_project.story_files} == {"orders.yml", "rules.yml"}
    assert [p.name for p in pizza_project.test_story_files] == ["test_conversations.yml"]
    assert [p.name for p in pizza_project.test_nlu_files] == ["nlu_test.yml"]
    assert pizza_project.policies[0]["name"] == "MemoizationPolicy"


def test_prepared_inputs_train_every_config_as_a_whole_assistant():
    prepared = prepare(PIZZA_PROJECT, configs=CONFIGS)
    names = [x.name for x in prepared.configs]
    assert names == ["project", "diet", "diet_intents_crf", "logreg_crf"]
    for config in prepared.configs:
        assert [p["name"] for p in config.policies] == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
        assert "ResponseSelector" in config.component_names()  # the faq retrieval intent needs one
        assert all(p.get("epochs", 1) <= 1 for p in config.pipeline + config.policies)
    assert prepared.test.source.endswith("tests")  # the project's held-out NLU file
    assert prepared.has_conversations


def test_a_changed_response_or_story_is_a_changed_data_set(tmp_path):
    before = prepare(PIZZA_PROJECT)
    project = copy_project(tmp_path)
    domain = project / "domain.yml"
    domain.write_text(domain.read_text().replace("Bye, enjoy your meal!", "Bye!"))
    after_response = prepare(project)
    assert after_response.train.digest == before.train.digest
    assert after_response.project.domain_digest != before.project.domain_digest
    assert after_response.data_digest != before.data_digest
    stories = project / "data" / "stories" / "orders.yml"
    stories.write_text(stories.read_text().replace("utter_order_not_placed", "utter_goodbye", 1))
    after_story = prepare(project)
    assert after_story.project.stories_digest != after_response.project.stories_digest
    assert after_story.data_digest != after_response.data_digest


def test_names_used_but_not_declared_are_errors_naming_file_and_fix(tmp_path):
    project = copy_project(tmp_path)
    extra = project / "data" / "stories" / "drinks" / "drinks.yml"
    extra.parent.mkdir()
    extra.write_text(
        'version: "3.1"\nstories:\n- story: order a drink\n  steps:\n  - intent: order_drink\n'
        "  - action: utter_drink_ordered\n  - action: action_check_fridge\n"
    )
    with pytest.raises(InputError) as caught:
        prepare(project)
    problems = caught.value.problems
    assert any(
        f"{extra}: story 'order a drink' uses intent 'order_drink'" in p and "add it under `intents:`" in p
        for p in problems
    ), problems
    assert any("response 'utter_drink_ordered', which has no text" in p for p in problems), problems
    assert any("action 'action_check_fridge'" in p and "under `actions:`" in p for p in problems), problems


def test_story_structure_conflicts_are_errors(tmp_path):
    project = copy_project(tmp_path)
    (project / "data" / "stories" / "conflict.yml").write_text(
        'version: "3.1"\nstories:\n- story: cancel, then be thanked\n  steps:\n  - intent: cancel_order\n'
        "  - action: utter_cancel_confirmed\n"
    )
    with pytest.raises(InputError) as caught:
        prepare(project)
    [problem] = [p for p in caught.value.problems if "conflict" in p]
    assert "Story structure conflict after intent 'cancel_order'" in problem
    assert "cancel, then be thanked" in problem and "make the stories agree" in problem


def test_financial_demo_config_needs_spacy_one_sentence_before_training():
    project = SHARED_PROJECTS / "financial-demo"
    with pytest.raises(InputError) as caught:
        prepare(project, allow_conflicts=True)
    [problem] = caught.value.problems
    assert problem.startswith(f"{project / 'config.yml'}: SpacyNLP (pipeline item ")
    assert "'en_core_web_md'" in problem and "python -m spacy download en_core_web_md" in problem
    assert "--no-project-config" in problem
    # its data with the pipelines of configs/ is fine (the training itself is tests/workflow/test_project_run.py)
    prepared = prepare(project, allow_conflicts=True, project_config=False)
    assert [x.name for x in prepared.configs] == ["logreg_crf"]
    assert prepared.has_conversations


def test_helpdesk_duckling_and_two_intent_text_are_warnings(caplog):
    prepared = prepare(SHARED_PROJECTS / "helpdesk-assistant")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Duckling server at http://localhost:8000 does not answer" in w for w in warnings), warnings
    assert any(
        "'yes thanks' is labelled with two intents" in w and "--no-allow-conflicts" in w for w in warnings
    )
    assert [x.name for x in prepared.configs] == ["project", "logreg_crf"]


def test_two_intent_text_is_an_error_when_asked():
    with pytest.raises(InputError, match="'yes thanks' is labelled with two intents"):
        prepare(SHARED_PROJECTS / "helpdesk-assistant", allow_conflicts=False)


@pytest.mark.slow
def test_core_metrics_equal_rasa_test_core(assistant_model, pizza_project, tmp_path):
    staged = pizza_project.stage_test_stories(tmp_path / "staged")
    agent = fast_load.load_agent(assistant_model.archive)
    ours = conversations.evaluate(agent, staged.folder, tmp_path / "ours", staged.sources)
    theirs = rasa_test_core(assistant_model.archive, PIZZA_PROJECT / "tests", tmp_path)
    report = json.loads((theirs / "story_report.json").read_text())
    assert differences(report, json.loads((tmp_path / "ours" / "story_report.json").read_text())) == []
    expected = m.core_metrics(
        report, ours.metrics[c.CORE_ACTION_ACCURACY], set(agent.domain.action_names_or_texts)
    )
    assert ours.metrics == pytest.approx(expected)
    assert ours.metrics[c.CORE_CONVERSATION_ACCURACY] == report["conversation_accuracy"]["accuracy"]
    assert ours.metrics[c.CORE_ACTION_F1_WEIGHTED] == pytest.approx(report["weighted avg"]["f1-score"])
    assert "core_action_f1/utter_greet" in ours.metrics and "core_action_f1/greet" not in ours.metrics
    # Rasa writes a comment only ("None of the test stories failed") when every conversation passed
    failed = (yaml.safe_load((theirs / "failed_test_stories.yml").read_text()) or {}).get("stories") or []
    assert int(ours.metrics[c.CORE_CONVERSATIONS_FAILED]) == len(failed)
    table = ours.table
    assert len(table) == 6 and int((~table["passed"]).sum()) == len(failed)
    assert set(table["file"]) == {str(PIZZA_PROJECT / "tests" / "test_conversations.yml")}
    for row in table[~table["passed"]].itertuples():
        assert json.loads(row.mistakes), row.story  # a failed conversation names its wrong predictions


@pytest.mark.slow
def test_response_selection_equals_rasa_test_nlu(assistant_model, pizza_project, tmp_path):
    test = load_nlu(PIZZA_PROJECT / "tests", list(pizza_project.test_nlu_files))
    processor = evaluation.load_processor(assistant_model.archive)
    ours = evaluation.evaluate(processor, test, ["CRFEntityExtractor"], tmp_path / "ours")
    theirs = rasa_test_nlu_out(assistant_model.archive, pizza_project.test_nlu_files[0], tmp_path)
    report = json.loads((theirs / "response_selection_report.json").read_text())
    assert (
        differences(report, json.loads((tmp_path / "ours" / "response_selection_report.json").read_text()))
        == []
    )
    assert ours.metrics[c.RESPONSE_SELECTION_F1_WEIGHTED] == pytest.approx(report["weighted avg"]["f1-score"])
    assert ours.metrics["response_selection_f1/faq/vegan"] == pytest.approx(report["faq/vegan"]["f1-score"])
    rows = ours.predictions.dropna(subset=["response_key"])
    assert len(rows) == 16 and set(rows["response_key"]) == {
        "faq/opening_hours", "faq/delivery_area", "faq/vegan", "faq/payment"
    }  # fmt: skip
