"""A whole Rasa project, read the way ``rasa train`` reads it.

A project folder holds ``config.yml`` (pipeline and policies), ``domain.yml`` (or a ``domain/`` folder),
``data/`` with NLU, stories and rules files in any nesting, and ``tests/`` with test conversations (files
whose name starts with ``test_``, as ``rasa test`` wants them) and, optionally, held-out NLU examples.
Rasa's ``TrainingDataImporter`` reads the config, the domain and the stories; the NLU part is read file by
file by ``rasa.data.load_nlu`` so that errors name their file. This module also turns the project into the
plain facts ``decide.project_checks`` judges, runs Rasa's own story-structure and domain checks, and
writes the files a training or a test conversation run reads.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu_mlflow.console import library_output
from nlu_mlflow.decide.project_checks import DomainFacts, Use
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa.data import NLU_SUFFIXES
from nlu_mlflow.rasa.pipelines import RESPONSE_SELECTOR, ProjectConfig

CONFIG_NAMES = ("config.yml", "config.yaml")
DOMAIN_NAMES = ("domain.yml", "domain.yaml", "domain")
DATA_DIR = "data"
TESTS_DIR = "tests"
STORY_KEYS = ("stories", "rules")
TEST_PREFIX = "test_"


@dataclass(frozen=True, eq=False)
class Project:
    """What training and testing a whole assistant reads from a Rasa project."""

    root: Path
    config_path: Path | None  # the project's own config.yml (None: the project has none)
    domain_path: Path
    data_dir: Path
    story_files: tuple[Path, ...]  # data files with stories or rules (any nesting)
    test_story_files: tuple[Path, ...]  # test conversations
    test_nlu_files: tuple[Path, ...]  # NLU files under tests/ (held-out examples)
    domain: object  # rasa.shared.core.domain.Domain
    stories: object  # rasa.shared.core.training_data.structures.StoryGraph
    config: dict

    @property
    def has_core(self) -> bool:
        """True when a full assistant (NLU and dialogue policies) is trained, as ``rasa train`` decides."""
        return not self.domain.is_empty() and not self.stories.is_empty()

    @property
    def policies(self) -> list[dict] | None:
        return self.config.get("policies")

    @property
    def retrieval_intents(self) -> list[str]:
        return sorted(self.domain.retrieval_intents)

    @functools.cached_property
    def domain_digest(self) -> str:
        return self.domain.fingerprint()[:16]

    @functools.cached_property
    def stories_digest(self) -> str:
        return self.stories.fingerprint()[:16]

    @functools.cached_property
    def tests_digest(self) -> str | None:
        if not self.test_story_files:
            return None
        blob = "\n".join(_canonical_yaml(p) for p in sorted(self.test_story_files))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def pipeline_defaults(self, include_own_config: bool = True) -> ProjectConfig:
        """What the project adds to the pipelines of ``configs/`` (``pipelines.for_project``)."""
        selectors = tuple(c for c in self.config.get("pipeline") or [] if c.get("name") == RESPONSE_SELECTOR)
        own = self.config_path if include_own_config else None
        return ProjectConfig(own, self.policies, tuple(self.retrieval_intents), selectors)

    def stage_training_files(self, work: Path) -> list[Path]:
        """Copies of the stories and rules files with only their dialogue part (an ``nlu:`` section of a
        mixed file is not trained twice: the NLU examples come from the workflow's training split)."""
        return [
            _dialogue_copy(p, work / "dialogue" / f"{i:03d}_{p.name}") for i, p in enumerate(self.story_files)
        ]

    def stage_test_stories(self, work: Path) -> StagedTests | None:
        """The test conversations in one folder, each named ``test_*`` (what ``rasa test`` reads)."""
        if not self.test_story_files:
            return None
        folder = work / "test_conversations"
        folder.mkdir(parents=True, exist_ok=True)
        sources = {}
        for i, path in enumerate(self.test_story_files):
            staged = folder / f"{TEST_PREFIX}{i:03d}_{path.name.removeprefix(TEST_PREFIX)}"
            shutil.copyfile(path, staged)
            sources[staged.name] = str(path)
        return StagedTests(folder, sources)


@dataclass(frozen=True)
class StagedTests:
    folder: Path
    sources: dict[str, str]  # staged file name -> the project's file


def _canonical_yaml(path: Path) -> str:
    return yaml.safe_dump(yaml.safe_load(path.read_text(encoding="utf-8")), sort_keys=True)


def _dialogue_copy(path: Path, target: Path) -> Path:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    kept = {k: v for k, v in document.items() if k == "version" or k in STORY_KEYS}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kept, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def _first(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).exists()), None)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in NLU_SUFFIXES)


def is_story_file(path: Path) -> bool:
    """A YAML file with stories or rules (Rasa's own check), whether or not it also has an ``nlu:`` part."""
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.exceptions import RasaException

    try:
        return YAMLStoryReader.is_stories_file(path)
    except (RasaException, UnicodeDecodeError, ValueError):
        return False


def is_nlu_file(path: Path) -> bool:
    from rasa.shared.data import is_nlu_file as rasa_is_nlu_file
    from rasa.shared.exceptions import RasaException

    try:
        return rasa_is_nlu_file(str(path))
    except (RasaException, UnicodeDecodeError, ValueError):
        return False


def test_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(test conversation files, NLU files) among ``paths`` (files or folders)."""
    files = [f for p in paths for f in ([p] if p.is_file() else _yaml_files(p))]
    return [f for f in files if is_story_file(f)], [
        f for f in files if not is_story_file(f) and is_nlu_file(f)
    ]


def load_project(root: Path | str, test_stories: Path | None = None) -> Project:
    """Read the project at ``root``; ``test_stories`` (a file or folder) replaces its ``tests/`` folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"{root}: no such folder; pass --project a Rasa project folder (with domain.yml and data/)."
        )
    domain_path = _first(root, DOMAIN_NAMES)
    data_dir = root / DATA_DIR
    if domain_path is None:
        raise InputError(
            f"{root}: no domain.yml (or domain/ folder); a Rasa project needs one, see `rasa init`."
        )
    if not data_dir.is_dir():
        raise InputError(
            f"{root}: no data/ folder; put the project's NLU, stories and rules files in {data_dir}."
        )
    if test_stories is not None and not Path(test_stories).exists():
        raise InputError(
            f"{test_stories}: no such file or folder; pass --test-stories test conversations (YAML)."
        )
    config_path = _first(root, CONFIG_NAMES)
    config = _read_config(config_path) if config_path else {}
    domain, stories = _import(config_path, config, domain_path, data_dir)
    tests = [Path(test_stories)] if test_stories is not None else [root / TESTS_DIR]
    conversations, nlu_tests = test_files(tests)
    if test_stories is not None and not conversations:
        raise InputError(
            f"{test_stories}: holds no test conversations; write them as Rasa test stories (`stories:` with "
            "`user:` and `intent:` steps)."
        )
    story_files = tuple(p for p in _yaml_files(data_dir) if is_story_file(p))
    return Project(
        root, config_path, domain_path, data_dir, story_files, tuple(conversations), tuple(nlu_tests),
        domain, stories, config,
    )  # fmt: skip


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}; fix the syntax.") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: must be a mapping with `pipeline:` and `policies:`; fix the file.")
    return config


def _import(config_path: Path | None, config: dict, domain_path: Path, data_dir: Path):
    """Rasa's importer: the domain and the stories (rules included) of the project."""
    from rasa.shared.exceptions import RasaException
    from rasa.shared.importers.importer import TrainingDataImporter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # format-version notes; the checks report what matters
            importer = TrainingDataImporter.load_from_dict(
                config, str(config_path) if config_path else None, str(domain_path), [str(data_dir)]
            )
            return importer.get_domain(), importer.get_stories()
    except RasaException as exc:
        detail = " ".join(str(exc).split())[:300]
        raise InputError(
            f"{domain_path.parent}: Rasa cannot read the project ({detail}); fix it so that "
            "`rasa data validate` accepts it."
        ) from None


# --- facts for decide.project_checks -------------------------------------------------------------


def domain_facts(project: Project) -> DomainFacts:
    from rasa.shared.core.constants import DEFAULT_INTENTS

    domain = project.domain
    return DomainFacts(
        file=str(project.domain_path),
        intents=frozenset(domain.intents),
        entities=frozenset(domain.entities),
        actions=frozenset(domain.action_names_or_texts),
        responses=frozenset(domain.responses),
        forms=frozenset(domain.form_names),
        default_intents=frozenset(DEFAULT_INTENTS),
    )


def story_uses(project: Project) -> list[Use]:
    """Every intent, entity, action and form a story or rule step names, with its file and block."""
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, UserUttered
    from rasa.shared.core.training_data.structures import RuleStep

    uses = []
    for step in project.stories.story_steps:
        kind = "rule" if isinstance(step, RuleStep) else "story"
        where = (str(step.source_name or project.data_dir), f"{kind} '{step.block_name}'")
        for event in step.events:
            if isinstance(event, UserUttered):
                if event.intent_name:
                    uses.append(Use(*where, "intent", event.intent_name))
                uses += [Use(*where, "entity", e["entity"]) for e in event.entities or [] if e.get("entity")]
            elif isinstance(event, ActionExecuted) and event.action_name:
                uses.append(Use(*where, "action", event.action_name))
            elif isinstance(event, ActiveLoop) and event.name:
                uses.append(Use(*where, "form", event.name))
    return uses


def nlu_uses(nlu) -> list[Use]:
    """Every intent and entity the NLU files use, with their file (``nlu`` is a ``rasa.data.NluData``)."""
    uses = []
    for file, part in nlu.parts:
        for message in part.intent_examples:
            uses.append(Use(file, "", "intent", message.get("intent")))
            uses += [Use(file, "", "entity", e["entity"]) for e in message.get("entities") or []]
    return uses


def response_names(nlu) -> set[str]:
    """Responses defined in NLU files (retrieval intents' answers may live there instead of the domain)."""
    return set(nlu.training_data.responses)


def story_conflicts(project: Project, max_history: int | None = None) -> list[str]:
    """Rasa's story-structure check (``rasa data validate stories``): one sentence per conflict."""
    from rasa.core.training.story_conflict import find_story_conflicts
    from rasa.shared.core.generator import TrainingDataGenerator

    if not project.has_core:
        return []
    with library_output():
        trackers = TrainingDataGenerator(
            project.stories, domain=project.domain, remove_duplicates=False, augmentation_factor=0
        ).generate_story_trackers()
    with library_output():  # Rasa's progress bar over the story blocks
        conflicts = find_story_conflicts(trackers, project.domain, max_history)
    return [
        f"{project.data_dir}: {'; '.join(line.strip() for line in str(conflict).splitlines())}; make the "
        "stories agree on the next action or add a turn that tells them apart (`rasa data validate stories`)."
        for conflict in conflicts
    ]


def domain_problems(project: Project) -> list[str]:
    """Rasa's own domain checks that fail ``rasa data validate`` (forms, slots and their mappings)."""
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_dict(
        project.config, None, str(project.domain_path), [str(project.data_dir)]
    )
    validator = Validator.from_importer(importer)
    problems = []
    for check in (
        validator.verify_domain_validity,
        validator.verify_forms_in_stories_rules,
        validator.verify_form_slots,
        validator.verify_slot_mappings,
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            passed = check()
        if not passed:
            problems += [
                f"{project.domain_path}: {' '.join(str(w.message).split())} (fix the domain so that "
                "`rasa data validate` passes)"
                for w in caught
            ]
    return problems
