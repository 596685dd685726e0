"""Test conversations: Rasa's story evaluation of a whole assistant, as ``rasa test core`` runs it.

``rasa.core.test.test`` runs every test conversation through the model's dialogue policies (each user turn
as its annotated intent and entities, as ``rasa test core`` does without ``--e2e``: the NLU part is measured
by the NLU metrics) and writes Rasa's story report, confusion matrix and the failed and successful
conversations; this module adds the fixed metric names (``decide.metrics.core_metrics``) and a table with
one row per test conversation.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nlu_mlflow.console import library_output
from nlu_mlflow.decide import metrics as m
from nlu_mlflow.rasa import aio

FAILED_FILE = "failed_test_stories.yml"  # Rasa's names (rasa.shared.constants)
SUCCESSFUL_FILE = "successful_test_stories.yml"
REPORT_FILE = "story_report.json"
PREDICTED_MARK = "# predicted:"
_STORY = re.compile(r"^- story: (.*)$", re.MULTILINE)
_SOURCE = re.compile(r"^(.*) \((.*)\)$")  # Rasa appends the source file to a test story's name


@dataclass(frozen=True)
class ConversationResults:
    metrics: dict[str, float]
    table: pd.DataFrame  # one row per test conversation: story, file, passed, mistakes (JSON list)
    report_dir: Path
    seconds: float


def has_core(agent) -> bool:
    """True when the loaded model predicts actions (a whole assistant, not an NLU-only model)."""
    metadata = agent.processor.model_metadata if agent.processor else None
    return bool(metadata and metadata.core_target)


def evaluate(agent, conversations: Path, out_dir: Path, sources: dict[str, str] | None = None):
    """Run the test conversations in ``conversations`` (a folder of ``test_*.yml``) through ``agent``;
    Rasa's files land in ``out_dir``. ``sources`` maps a staged file's name to the file it came from."""
    from rasa.core.test import test

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with library_output():  # Rasa's progress bar over the conversations
        result = aio.run(
            test(
                str(conversations), agent, out_directory=str(out_dir), e2e=False, successes=True, errors=True
            )
        )
    metrics = m.core_metrics(result["report"], result["accuracy"], set(agent.domain.action_names_or_texts))
    table = conversation_table(out_dir, sources or {})
    return ConversationResults(metrics, table, out_dir, time.perf_counter() - started)


def conversation_table(out_dir: Path, sources: dict[str, str]) -> pd.DataFrame:
    """One row per test conversation from Rasa's failed and successful story files."""
    rows = _rows(out_dir / FAILED_FILE, False, sources) + _rows(out_dir / SUCCESSFUL_FILE, True, sources)
    return pd.DataFrame(rows, columns=["story", "file", "passed", "mistakes"])


def _rows(path: Path, passed: bool, sources: dict[str, str]) -> list[dict]:
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    heads = list(_STORY.finditer(text))
    rows = []
    for i, head in enumerate(heads):
        body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        name, source = _name_and_source(head.group(1))
        mistakes = [
            " ".join(line.strip().lstrip("- ").split())
            for line in body.splitlines()
            if PREDICTED_MARK in line
        ]
        rows.append({"story": name, "file": sources.get(Path(source).name, source), "passed": passed,
                     "mistakes": json.dumps(mistakes)})  # fmt: skip
    return rows


def _name_and_source(title: str) -> tuple[str, str]:
    title = title.strip().strip("'\"")
    match = _SOURCE.match(title)
    return (match.group(1), match.group(2)) if match else (title, "")
