"""Load and check every input of a workflow run before anything is trained or logged.

Pipelines and data are read by the Rasa layer, the critical suite's YAML here (its schema is
``decide.critical_suite``), and every check is one of ``decide``'s pure functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu_mlflow.decide import crossval, validation
from nlu_mlflow.decide.critical_suite import CriticalSuite, check_suite
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa.data import NluData, load_nlu, split
from nlu_mlflow.workflow import tune
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True)
class Inputs:
    train: NluData
    test: NluData
    configs: list[pipelines.PipelineConfig]
    suite: CriticalSuite | None
    overlap: list[str]

    @property
    def intent_support(self) -> dict[str, int]:
        return dict(Counter(m.get("intent") for m in self.test.examples))


def prepare(settings: WorkflowSettings, fetched: Path | None = None) -> Inputs:
    """Load and check every input; raises InputError before anything is trained or logged.

    ``fetched`` is the local copy of remote ``--data`` (see ``remote``).
    """
    configs = pipelines.load_all(settings.configs, settings.epochs, settings.seed)
    full = load_nlu(fetched or settings.data)
    if fetched is not None:
        full = dataclasses.replace(full, source=settings.remote_source().display)
    problems = validation.check_training_data(full.view, settings.min_examples, settings.allow_conflicts)
    if settings.test_data is not None:
        train, test = full, load_nlu(settings.test_data)
    else:
        train, test = split(full, settings.test_fraction, settings.seed)
    problems += validation.check_test_data(train.view, test.view)
    if settings.cv_folds:
        problems += crossval.fold_problems(train.view, settings.cv_folds)
    problems += tune.input_problems(settings, train, configs)  # --trials: its split and storage
    suite = None
    if settings.critical is not None:
        try:
            suite = load_suite(settings.critical, {m.get("intent") for m in train.examples})
        except InputError as error:
            problems += error.problems
    if problems:
        raise InputError(problems)
    overlap = validation.overlapping_texts(train.view, test.view)
    _warn(settings, full, overlap)
    return Inputs(train, test, configs, suite, overlap)


def _warn(settings: WorkflowSettings, full: NluData, overlap: list[str]) -> None:
    for warning in validation.case_conflicts(full.view) if not settings.allow_conflicts else []:
        logger.warning("%s", warning)
    if overlap:
        logger.warning(
            "%d test example(s) also occur in the training data (e.g. %r); their scores are optimistic.",
            len(overlap),
            overlap[0],
        )


def load_suite(path: Path | str, known_intents: set[str] | None) -> CriticalSuite:
    """Read and check a critical-utterance suite file; see ``parse_suite``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file; pass an existing critical utterances file "
            "such as data/pizza/critical.yml."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc}); save it as a UTF-8 YAML file.") from None
    return parse_suite(text, str(path), known_intents)


def parse_suite(text: str, source: str, known_intents: set[str] | None) -> CriticalSuite:
    """A suite's YAML text as records (``decide.critical_suite.check_suite``); one sentence per problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise InputError(f"{source}: not valid YAML ({problem}{at}); fix the YAML syntax there.") from None
    return check_suite(document, source, known_intents)
