from pathlib import Path

import pytest

from nlu_mlflow.errors import InputError
from nlu_mlflow.workflow import settings
from tests.helpers import ROOT


def test_shipped_workflow_file_builds_settings():
    built = settings.build({}, ROOT / "nlu-mlflow.yml")
    assert built.data is None
    assert built.project == ROOT / "data" / "pizza-assistant"
    assert built.critical == ROOT / "data" / "pizza-assistant" / "critical.yml"
    assert built.policy.min_conversation_pass_rate == 1.0
    assert built.epochs == 40
    assert built.policy.primary_metric == "intent_f1_weighted"


def test_command_line_overrides_file_and_policy(tmp_path):
    path = tmp_path / "wf.yml"
    path.write_text("data: d/train.yml\nepochs: 5\npromotion:\n  min_gain: 0.01\n")
    built = settings.build({"epochs": 2, "seed": None}, path, {"min_gain": 0.05, "max_entity_f1_drop": None})
    assert built.data == (tmp_path / "d" / "train.yml").resolve()
    assert built.epochs == 2
    assert built.seed == 42
    assert built.policy.min_gain == 0.05
    assert built.policy.max_entity_f1_drop == 0.02


def test_epochs_zero_means_as_configured():
    assert settings.build({"data": Path("x.yml"), "epochs": 0}).epochs is None


def test_search_settings_come_from_the_workflow_file_and_the_command_line(tmp_path):
    path = tmp_path / "wf.yml"
    path.write_text("data: x.yml\ntrials: 20\nvalidation_fraction: 0.25\npruning: false\n")
    built = settings.build({"trials": None, "pruning": None}, path)
    assert (built.trials, built.validation_fraction, built.pruning) == (20, 0.25, False)
    assert settings.build({"trials": 0, "pruning": True}, path).trials is None, "--trials 0: no search"
    assert (
        settings.build({"data": "x.yml"}).pruning is True and settings.build({"data": "x.yml"}).trials is None
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dta: x.yml\n", "unknown setting 'dta'; did you mean 'data'?"),
        ("- a\n- b\n", "must be a mapping of settings"),
        ("data: [\n", "not readable as YAML"),
        ("data: x.yml\npromotion:\n  min_gian: 0.1\n", "did you mean 'min_gain'"),
    ],
)
def test_bad_workflow_file_names_file_and_fix(tmp_path, text, expected):
    path = tmp_path / "wf.yml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        settings.build({}, path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_no_data_anywhere():
    with pytest.raises(InputError, match="no training data; pass --data PATH"):
        settings.build({})
