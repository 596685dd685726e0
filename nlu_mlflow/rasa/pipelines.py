"""Rasa pipeline configs: discover them, check their components and `search:` section, cap epochs, flatten to
params."""

from __future__ import annotations

import copy
import difflib
import importlib
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from nlu_mlflow.decide import search_space
from nlu_mlflow.errors import InputError

CONFIG_SUFFIXES = (".yml", ".yaml")
PROJECT_CANDIDATE = "project"  # run name of a project's own config.yml
RESPONSE_SELECTOR = "ResponseSelector"


@dataclass(frozen=True)
class PipelineConfig:
    """One Rasa config file, as read and as it will be trained."""

    name: str  # file stem; the run name of its MLflow run
    path: Path
    config: dict  # effective config (after the epoch cap), without its `search:` section
    search: tuple[search_space.Dimension, ...] = ()  # the `search:` section, epochs within the cap

    @property
    def pipeline(self) -> list[dict]:
        return self.config.get("pipeline") or []

    @property
    def policies(self) -> list[dict]:
        return self.config.get("policies") or []

    def component_names(self) -> list[str]:
        return [c["name"] for c in self.pipeline]

    def write(self, path: Path) -> Path:
        """The config Rasa trains (never the `search:` section, which Rasa does not know)."""
        path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        return path

    def text(self) -> str:
        """The effective config with its `search:` section, as YAML that ``parse`` reads back (a study
        stores it for its workers)."""
        search = {"search": search_space.section(list(self.search))} if self.search else {}
        return yaml.safe_dump({**self.config, **search}, sort_keys=False)

    def with_values(self, values: dict[str, object]) -> PipelineConfig:
        """The config with each searched option set to ``values[name]``; it searches nothing itself."""
        pipeline = search_space.apply(self.pipeline, list(self.search), values)
        return replace(self, config={**self.config, "pipeline": pipeline}, search=())

    def with_epoch_cap(self, cap: int | None) -> PipelineConfig:
        return replace(self, config=cap_epochs(self.config, cap)) if cap else self

    def max_epochs(self) -> int | None:
        """The most epochs a component of this pipeline trains (None: nothing trains in epochs)."""
        epochs = [e for c in self.pipeline if (e := c.get("epochs", default_epochs(c["name"]))) is not None]
        return int(max(epochs)) if epochs else None

    def current_values(self) -> dict[str, object]:
        """Each searched option's value as configured, or the component's default (None when unknown)."""
        return {
            d.name: self.pipeline[d.component].get(
                d.option, default_config(self.pipeline[d.component]["name"]).get(d.option)
            )
            for d in self.search
        }


def discover(configs: Path) -> list[Path]:
    """The config files to train: ``configs`` itself when it is a file, else the files in the folder."""
    if configs.is_file():
        return [configs]
    if not configs.is_dir():
        raise InputError(f"{configs}: no such file or folder; pass --configs with a folder of Rasa configs.")
    files = sorted(p for p in configs.iterdir() if p.suffix in CONFIG_SUFFIXES)
    if not files:
        raise InputError(f"{configs}: the folder holds no .yml config; add a Rasa config with a `pipeline:`.")
    return files


def load(
    path: Path,
    epochs: int | None = None,
    seed: int | None = None,
    project: ProjectConfig | None = None,
    name: str | None = None,
) -> PipelineConfig:
    """Read and check one config and its `search:` section; combine it with a ``project`` (its policies,
    its ResponseSelector); apply the epoch cap and the seed."""
    return parse(path.read_text(encoding="utf-8"), path, epochs, seed, project, name)


def parse(
    text: str,
    path: Path,
    epochs: int | None = None,
    seed: int | None = None,
    project: ProjectConfig | None = None,
    name: str | None = None,
) -> PipelineConfig:
    """``load`` on a config's text (``path`` names it in messages and gives the config its name)."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}; fix the syntax.") from None
    if not isinstance(config, dict) or not isinstance(config.get("pipeline"), list) or not config["pipeline"]:
        raise InputError(
            f"{path}: no `pipeline:` list; add one, e.g. `pipeline: [{{name: WhitespaceTokenizer}}]`."
        )
    if project is not None:
        config = for_project(config, project)
    problems = [p for i, c in enumerate(config["pipeline"]) if (p := _component_problem(path, i, c))]
    problems += _policy_problems(path, config.get("policies"))
    if problems:
        raise InputError(problems)
    config = dict(config)
    search = search_space.parse(path, config.pop("search", None), config["pipeline"])
    config = cap_epochs(config, epochs) if epochs else config
    config = with_seed(config, seed) if seed is not None else config
    return PipelineConfig(name or path.stem, path, config, tuple(search_space.capped(search, epochs)))


def load_all(
    configs: Path | None,
    epochs: int | None = None,
    seed: int | None = None,
    project: ProjectConfig | None = None,
) -> list[PipelineConfig]:
    """The configs to train: every file of ``configs`` and, for a project, the project's own config
    (run name ``project``). A project's policies (and ResponseSelector) join every pipeline of ``configs``."""
    loaded = [load(p, epochs, seed, project) for p in discover(configs)] if configs else []
    if project is not None and project.path is not None:
        loaded.insert(0, load(project.path, epochs, seed, name=PROJECT_CANDIDATE))
    names = [c.name for c in loaded]
    if len(set(names)) != len(names):
        raise InputError(
            f"{configs}: two configs share the name {_duplicate(names)!r} (a file stem, or "
            f"'{PROJECT_CANDIDATE}' for the project's own config); rename one (run names must differ)."
        )
    if not loaded:
        raise InputError("no config to train: pass --configs, or a --project with a config.yml.")
    return loaded


def _duplicate(names: list[str]) -> str:
    return next(n for n in names if names.count(n) > 1)


@dataclass(frozen=True)
class ProjectConfig:
    """What a Rasa project adds to the pipelines of ``configs/``: its config file, its dialogue policies
    (None: Rasa chooses them, as ``rasa train`` does for a config without ``policies:``), and the
    ResponseSelectors its retrieval intents need."""

    path: Path | None  # the project's config.yml; None leaves it out of the candidates
    policies: list[dict] | None
    retrieval_intents: tuple[str, ...] = ()
    response_selectors: tuple[dict, ...] = ()  # the project's own, copied to pipelines without one


def for_project(config: dict, project: ProjectConfig) -> dict:
    """``config`` trained as a whole assistant of ``project``: with its policies and, when the project has
    retrieval intents and the pipeline no ResponseSelector, the project's ResponseSelector(s)."""
    combined = copy.deepcopy(config)
    if project.policies is not None and "policies" not in combined:
        combined["policies"] = copy.deepcopy(project.policies)
    has_selector = any(c.get("name") == RESPONSE_SELECTOR for c in combined["pipeline"])
    if project.retrieval_intents and not has_selector:
        selectors = project.response_selectors or ({"name": RESPONSE_SELECTOR},)
        combined["pipeline"] += [copy.deepcopy(dict(s)) for s in selectors]
    return combined


def _policy_problems(path: Path, policies: object) -> list[str]:
    if policies is None:
        return []
    if not isinstance(policies, list):
        return [f"{path}: `policies:` must be a list of {{name: ...}} items; fix it."]
    problems = []
    for index, policy in enumerate(policies):
        if not isinstance(policy, dict) or not isinstance(policy.get("name"), str):
            problems.append(f"{path}: policy item {index + 1} has no `name:`; give every policy a name.")
        elif component_class(policy["name"]) is None:
            close = difflib.get_close_matches(policy["name"], known_components(), n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else "use a Rasa policy name or a dotted import path"
            )
            problems.append(f"{path}: unknown policy '{policy['name']}' (policy item {index + 1}); {hint}")
    return problems


def known_components() -> dict[str, type]:
    from rasa.engine.recipes.default_components import DEFAULT_COMPONENTS

    return {c.__name__: c for c in DEFAULT_COMPONENTS}


def component_class(name: str) -> type | None:
    """Rasa's built-in component of that name, or a custom one given by its dotted import path."""
    builtin = known_components().get(name)
    if builtin is not None or "." not in name:
        return builtin
    module, _, cls = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return None


def _component_problem(path: Path, index: int, component: object) -> str | None:
    if not isinstance(component, dict) or not isinstance(component.get("name"), str):
        return f"{path}: pipeline item {index + 1} has no `name:`; give every component a name."
    name = component["name"]
    if component_class(name) is not None:
        return None
    close = difflib.get_close_matches(name, known_components(), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "use a Rasa component name or a dotted import path"
    return f"{path}: unknown component '{name}' (pipeline item {index + 1}); {hint}"


def default_config(name: str) -> dict:
    getter = getattr(component_class(name), "get_default_config", None)
    return getter() if getter else {}


def default_epochs(name: str) -> int | None:
    return default_config(name).get("epochs")


def _steps(config: dict) -> list[dict]:
    """Pipeline components and policies, the things that take options."""
    return list(config.get("pipeline") or []) + list(config.get("policies") or [])


def with_seed(config: dict, seed: int) -> dict:
    """A copy of ``config`` where components and policies with a ``random_seed`` option and none set use
    ``seed``."""
    seeded = copy.deepcopy(config)
    for component in _steps(seeded):
        if "random_seed" in default_config(component["name"]) and component.get("random_seed") is None:
            component["random_seed"] = seed
    return seeded


def cap_epochs(config: dict, cap: int) -> dict:
    """A copy of ``config`` where no component trains more than ``cap`` epochs."""
    if cap < 1:
        raise InputError(f"--epochs {cap}: must be at least 1.")
    capped = copy.deepcopy(config)
    for component in _steps(capped):
        epochs = component.get("epochs", default_epochs(component["name"]))
        if epochs is not None:
            component["epochs"] = min(int(epochs), cap)
    return capped


def flatten(config: PipelineConfig) -> dict[str, str]:
    """MLflow params: ``pipeline.03.DIETClassifier.epochs -> 5``, ``policies.01.TEDPolicy.epochs -> 5``."""
    params = {"language": str(config.config.get("language", ""))}
    for section, steps in (("pipeline", config.pipeline), ("policies", config.policies)):
        for index, component in enumerate(steps):
            prefix = f"{section}.{index:02d}"
            params[prefix] = component["name"]
            for key, value in component.items():
                if key != "name":
                    params[f"{prefix}.{component['name']}.{key}"] = str(value)
    return params


def entity_extractors(config: PipelineConfig) -> list[str]:
    """Entity extractors of the pipeline, in pipeline order (the first is the main one)."""
    from rasa.nlu.extractors.extractor import EntityExtractorMixin

    extractors = []
    for component in config.pipeline:
        cls = component_class(component["name"])
        if component["name"] == "DIETClassifier" and component.get("entity_recognition") is False:
            continue
        if component["name"] == "EntitySynonymMapper":
            continue
        if cls is not None and issubclass(cls, EntityExtractorMixin):
            extractors.append(component["name"])
    return extractors
