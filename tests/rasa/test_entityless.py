"""Intent-only data (clinc150-like sets): Rasa's "Failed to load CRFEntityExtractor" warning is no failure.

The CRF stores nothing when the training data has no entities, and Rasa's load then warns "Failed to load
CRFEntityExtractor from model storage. Resource '...' doesn't exist.". A run says what it means in one line
of its own instead (``runtime.EntitylessCRFNote``).
"""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import sys

import pytest

from nlu_mlflow.rasa import runtime
from tests.helpers import CONFIGS, ROOT

INTENTS = {
    "greet": ["hi", "hello there", "good morning", "hey", "hello", "hi there"],
    "goodbye": ["bye", "see you later", "goodbye", "talk to you soon", "bye bye", "see you"],
    "thanks": ["thanks", "thank you", "many thanks", "thanks a lot", "thank you so much", "cheers"],
}


def write_nlu(path, examples: dict[str, list[str]]):
    body = "".join(
        f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {text}\n" for text in texts)
        for intent, texts in examples.items()
    )
    path.write_text('version: "3.1"\nnlu:\n' + body)
    return path


def test_rasa_still_words_the_warning_as_the_note_expects():
    from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor

    source = inspect.getsource(CRFEntityExtractor.load)
    assert 'f"Failed to load {cls.__name__} from model storage. Resource "' in source
    assert "f\"'{resource.name}' doesn't exist.\"" in source


def test_the_note_replaces_the_warning_once_per_component_and_lets_others_through(caplog):
    note = runtime.EntitylessCRFNote()
    crf = logging.getLogger(runtime.CRF_LOGGER)
    warning = "Failed to load CRFEntityExtractor from model storage. Resource 'train_CRFEntityExtractor5' doesn't exist."
    make = lambda text: crf.makeRecord(crf.name, logging.WARNING, "crf.py", 1, text, (), None)  # noqa: E731
    with caplog.at_level(logging.INFO, logger="nlu_mlflow"):
        assert note.filter(make(warning)) is False
        assert note.filter(make(warning)) is False
        assert note.filter(make("Some other CRF warning")) is True
    lines = [r.getMessage() for r in caplog.records if r.name == "nlu_mlflow"]
    assert lines == [
        "train_CRFEntityExtractor5: the training data has no entities, so this CRF has nothing to extract "
        '(Rasa\'s "Failed to load" warning about it is not an error)'
    ]


@pytest.mark.slow
def test_a_run_on_intent_only_data_says_what_the_missing_crf_means(tmp_path):
    train = write_nlu(tmp_path / "train.yml", INTENTS)
    test = write_nlu(tmp_path / "test.yml", {k: v[:2] for k, v in INTENTS.items()})
    done = subprocess.run(
        [sys.executable, "-m", "nlu_mlflow.cli", "run", "--data", str(train), "--test-data", str(test)]
        + ["--configs", str(CONFIGS / "logreg_crf.yml"), "--epochs", "1", "--no-register"]
        + ["--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}", "--lock-file", str(tmp_path / "lock")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Failed to load CRFEntityExtractor" not in output
    assert "the training data has no entities, so this CRF has nothing to extract" in output
