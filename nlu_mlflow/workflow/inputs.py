"""Load and check every input of a workflow run before anything is trained or logged.

Pipelines and data are read by the Rasa layer, the critical suite's YAML here (its schema is
``decide.critical_suite``), and every check is one of ``decide``'s pure functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu_mlflow.decide import crossval, project_checks, validation
from nlu_mlflow.decide.critical_suite import CriticalSuite, check_suite
from nlu_mlflow.errors import InputError
from nlu_mlflow.live import annotated
from nlu_mlflow.rasa import availability, pipelines
from nlu_mlflow.rasa import project as rasa_project
from nlu_mlflow.rasa.data import NluData, load_nlu, of_files, split
from nlu_mlflow.workflow import replay, tune
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True)
class Inputs:
    train: NluData
    test: NluData
    configs: list[pipelines.PipelineConfig]
    suite: CriticalSuite | None
    overlap: list[str]
    project: rasa_project.Project | None = None  # a whole assistant (domain, stories, test conversations)
    live: NluData | None = None  # the training data's annotated live messages (`inbox pull` files)
    live_test: NluData | None = None  # annotated live messages kept apart as test data (--live-test-data)

    @property
    def intent_support(self) -> dict[str, int]:
        return dict(Counter(m.get("intent") for m in self.test.examples))

    @property
    def data_digest(self) -> str:
        """Everything training reads: the NLU training data (synonyms, regexes, lookups, responses
        included) and, for a project, its domain and stories and rules (16 hex chars)."""
        parts = [self.train.digest]
        if self.project is not None:
            parts += [self.project.domain_digest, self.project.stories_digest]
        return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]

    @property
    def score_digests(self) -> dict[str, str | None]:
        """What a model's scores depend on: the test data, the critical suite, the test conversations."""
        return {
            "test": self.test.digest,
            "critical": self.suite.digest if self.suite else None,
            "conversations": self.project.tests_digest if self.project and self.has_conversations else None,
            **({"live": self.live_test.digest} if self.live_test is not None else {}),
        }

    @property
    def has_core(self) -> bool:
        return self.project is not None and self.project.has_core

    @property
    def has_conversations(self) -> bool:
        return self.project is not None and self.project.has_core and bool(self.project.test_story_files)


def prepare(settings: WorkflowSettings, fetched: Path | None = None) -> Inputs:
    """Load and check every input; raises InputError before anything is trained or logged.

    ``fetched`` is the local copy of remote ``--data`` (see ``remote``).
    """
    project = rasa_project.load_project(settings.project, settings.test_stories) if settings.project else None
    configs = _configs(settings, project)
    full = _full_data(settings, project, fetched)
    problems = validation.check_training_data(full.view, settings.min_examples, settings.conflicts_allowed)
    train, test = _train_and_test(settings, full, project)
    problems += validation.check_test_data(train.view, test.view)
    problems += _availability(configs, "problems")
    if project is not None:
        problems += _project_problems(project, full)
    if settings.cv_folds:
        problems += crossval.fold_problems(train.view, settings.cv_folds)
    problems += tune.input_problems(settings, train, configs)  # --trials: its split and storage
    problems += replay.input_problems(settings.live_traffic, settings.live_window)
    live_test = load_nlu(settings.live_test_data) if settings.live_test_data else None
    suite = None
    if settings.critical is not None:
        try:
            suite = load_suite(settings.critical, {m.get("intent") for m in train.examples})
        except InputError as error:
            problems += error.problems
    if problems:
        raise InputError(problems)
    overlap = validation.overlapping_texts(train.view, test.view)
    _warn(settings, full, overlap, project, configs)
    return Inputs(train, test, configs, suite, overlap, project, live_part(full), live_test)


def live_part(full: NluData) -> NluData | None:
    """The examples ``inbox pull`` / ``inbox import`` wrote (files with its header), as their own data."""
    pulls = [file for file in full.files if annotated.is_pull_file(Path(file))]
    if not pulls:
        return None
    live = of_files(full, pulls, "")
    assert live is not None, "pulls are among full's files"
    source = f"live traffic: {len(pulls)} pull(s), {len(live.examples)} annotated message(s) in {full.source}"
    return dataclasses.replace(live, source=source)


def _configs(settings: WorkflowSettings, project) -> list[pipelines.PipelineConfig]:
    """The candidates: ``configs/`` (with a project's policies) and a project's own config.yml."""
    if project is None:
        return pipelines.load_all(settings.configs, settings.epochs, settings.seed)
    if settings.project_config and project.config_path is None:
        raise InputError(
            f"{project.root}: no config.yml to train as candidate `project`; add one, or pass "
            "--no-project-config to train only the pipelines in --configs."
        )
    combined = project.pipeline_defaults(settings.project_config)
    folder = settings.configs if settings.configs is not None and Path(settings.configs).exists() else None
    return pipelines.load_all(folder, settings.epochs, settings.seed, combined)


def _train_and_test(settings: WorkflowSettings, full: NluData, project) -> tuple[NluData, NluData]:
    """--test-data, else a project's NLU files under tests/, else a seeded stratified split."""
    if settings.test_data is not None:
        return full, load_nlu(settings.test_data)
    if project is not None and project.test_nlu_files:
        return full, load_nlu(project.root / rasa_project.TESTS_DIR, list(project.test_nlu_files))
    return split(full, settings.test_fraction, settings.seed)


def _full_data(settings: WorkflowSettings, project, fetched: Path | None) -> NluData:
    """The NLU data: the project's, fetched remote ``--data`` (named after its source), or ``--data``."""
    if project:
        return load_nlu(project.data_dir, project=True)
    if fetched is not None:
        remote = settings.remote_source()
        assert remote is not None, "fetched data comes from a remote source"
        return dataclasses.replace(load_nlu(fetched), source=remote.display)
    assert settings.data is not None, "the settings name --data when they name no --project"
    return load_nlu(settings.data)


def _availability(configs, kind: str) -> list[str]:
    """Components that cannot run here (problems) or run with less (warnings), config by config."""
    found = []
    for config in configs:
        hint = ""
        if config.name == pipelines.PROJECT_CANDIDATE:
            hint = "Or pass --no-project-config to train the pipelines in --configs on this project."
        found += getattr(availability.check(config.path, config.pipeline, hint), kind)
    return list(dict.fromkeys(found))


def _project_problems(project, full: NluData) -> list[str]:
    """Rasa's validator, judged for a nightly run: used but undeclared names, story conflicts, domain."""
    domain = rasa_project.domain_facts(project)
    uses = rasa_project.nlu_uses(full) + rasa_project.story_uses(project)
    problems = project_checks.errors(domain, uses, rasa_project.response_names(full))
    return problems + rasa_project.story_conflicts(project) + rasa_project.domain_problems(project)


def _warn(settings: WorkflowSettings, full: NluData, overlap: list[str], project, configs) -> None:
    found = validation.case_conflicts(full.view) if not settings.allow_conflicts else []
    if settings.conflicts_allowed and settings.allow_conflicts is None:  # a project run: as Rasa, a warning
        found = validation.conflicting_texts(full.view, as_warning=True) + found
    if project is not None:
        domain = rasa_project.domain_facts(project)
        uses = rasa_project.nlu_uses(full) + rasa_project.story_uses(project)
        found += project_checks.warnings(domain, uses, rasa_project.response_names(full))
        if not project.test_story_files:
            found.append(f"{project.root}: no test conversations (tests/test_*.yml); dialogue is not tested.")
    found += _availability(configs, "warnings")
    for warning in found:
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
