"""Every bad input: exit code 2, one sentence naming file, item and fix, and no MLflow run left behind."""

from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from nlu_mlflow.cli import app
from tests.helpers import CONFIGS, PIZZA

GOOD_TRAIN = PIZZA / "train.yml"
GOOD_TEST = PIZZA / "test.yml"
LIGHT = CONFIGS / "logreg_crf.yml"


def nlu(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text('version: "3.1"\nnlu:\n' + body)
    return path


def invoke(tracking_uri, *args):
    result = CliRunner().invoke(
        app, ["run", "--tracking-uri", tracking_uri, "--epochs", "1", *map(str, args)]
    )
    return result


def runs_left(tracking_uri: str):
    client = mlflow.MlflowClient(tracking_uri)
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments]) if experiments else []


CASES = {
    "unreadable-yaml": (
        lambda t: ["--data", _write(t, "bad.yml", 'version: "3.1"\nnlu:\n- intent: greet\n  examples: [\n')],
        ["bad.yml: not readable as Rasa NLU data", "fix the file"],
    ),
    "unknown-component": (
        lambda t: [
            "--data",
            GOOD_TRAIN,
            "--configs",
            _write(t, "c.yml", "pipeline: [{name: DIETClasifier}]"),
        ],
        ["c.yml: unknown component 'DIETClasifier'", "did you mean 'DIETClassifier'?"],
    ),
    "too-few-examples": (
        lambda t: [
            "--data",
            nlu(
                t,
                "few.yml",
                "- intent: greet\n  examples: |\n    - hi\n    - hey\n- intent: bye\n  examples: |\n    - bye\n",
            ),
        ],
        ["few.yml: intent 'bye' has 1 example(s)", "add examples or remove the intent"],
    ),
    "broken-entity": (
        lambda t: [
            "--data",
            nlu(
                t,
                "ent.yml",
                "- intent: buy\n  examples: |\n    - a [pizza(product)\n    - a cola\n- intent: greet\n  examples: |\n    - hi\n    - hey\n",
            ),
        ],
        ["ent.yml: example 'a [pizza(product)'", "broken entity annotation"],
    ),
    "same-text-two-intents": (
        lambda t: [
            "--data",
            nlu(
                t,
                "dup.yml",
                "- intent: greet\n  examples: |\n    - hi\n    - hey\n- intent: bye\n  examples: |\n    - hi\n    - bye\n",
            ),
        ],
        [
            "example 'hi' is labelled with two intents",
            "keep it under one intent only, or pass --allow-conflicts",
        ],
    ),
    "unknown-test-intent": (
        lambda t: [
            "--test-data",
            nlu(t, "test.yml", "- intent: teleport\n  examples: |\n    - beam me up\n"),
        ],
        [
            "test.yml: intent 'teleport' (1 test example(s)) does not occur in the training data",
            "add training examples",
        ],
    ),
    "missing-data": (
        lambda t: ["--data", t / "nope.yml"],
        ["nope.yml: no such file or folder"],
    ),
    "epoch-fraction-above-one": (
        lambda t: ["--finetune", "--epoch-fraction", "1.5"],  # noqa: ARG005
        [
            "command line: --epoch-fraction 1.5 must be a number > 0 and <= 1",
            "pass e.g. --epoch-fraction 0.2",
        ],
    ),
    "finetune-only-without-finetune": (
        lambda t: ["--finetune-only", "--no-finetune"],  # noqa: ARG005
        ["--finetune-only needs fine-tuning, which --no-finetune", "drop one of them"],
    ),
    "full-retrain-growth-negative": (
        lambda t: ["--workflow", _write(t, "wf.yml", "finetune_only: true\nfull_retrain_growth: -0.1\n")],
        ["wf.yml: full_retrain_growth -0.1 must be a number >= 0, or null", "`full_retrain_growth: 0.2`"],
    ),
    "negative-epochs": (
        lambda t: ["--epochs", "-3"],  # noqa: ARG005
        ["command line: --epochs -3 must be a whole number >= 0, or null", "pass e.g. --epochs 40"],
    ),
    "typo-in-workflow-file": (
        lambda t: [
            "--workflow",
            _write(t, "wf.yml", "promotion:\n  min_critical_pass_rate: 1\n  min_gian: 0\n"),
        ],
        ["wf.yml: unknown setting 'promotion.min_gian'; did you mean 'min_gain'?"],
    ),
}


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_sentence_and_leaves_no_run(tmp_path, tracking_uri, case):
    make_args, expected = CASES[case]
    args = make_args(tmp_path)
    defaults = {"--data": GOOD_TRAIN, "--test-data": GOOD_TEST, "--configs": LIGHT}
    for flag, value in defaults.items():
        if flag not in args:
            args += [flag, value]
    result = invoke(tracking_uri, *args)
    assert result.exit_code == 2, result.output
    errors = "\n".join(line for line in result.output.splitlines() if line.startswith("error: "))
    for fragment in expected:
        assert fragment in errors, result.output
    assert runs_left(tracking_uri) == []
