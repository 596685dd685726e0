"""Workflow settings: built-in defaults, then a workflow YAML file, then command-line options.

A workflow file (e.g. ``nlu-mlflow.yml``) holds the same names as the ``run`` options, plus the
``promotion:`` section (see ``decide.promotion``); relative paths are read from the file's folder::

    data: data/pizza/train.yml
    test_data: data/pizza/test.yml
    critical: data/pizza/critical.yml
    configs: configs
    epochs: 40
    trials: 20          # search every config with a `search:` section (workflow/tune.py)
    model_name: rasa-nlu
    promotion:
      min_gain: 0.0
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu_mlflow import constants as c
from nlu_mlflow.decide.promotion import PromotionPolicy
from nlu_mlflow.errors import InputError
from nlu_mlflow.workflow import remote

PATH_KEYS = ("data", "test_data", "configs", "critical", "summary_json", "report_md")


@dataclass(frozen=True)
class WorkflowSettings:
    data: Path | str  # a file, a folder, or an http(s) URL
    test_data: Path | None = None
    test_fraction: float = 0.2
    seed: int = c.DEFAULT_SEED
    configs: Path = Path("configs")
    epochs: int | None = None
    critical: Path | None = None
    experiment: str = c.DEFAULT_EXPERIMENT
    tracking_uri: str | None = None
    model_name: str = c.DEFAULT_MODEL_NAME
    register: bool = True
    promote: bool = True
    policy: PromotionPolicy = field(default_factory=PromotionPolicy)
    min_examples: int = c.DEFAULT_MIN_EXAMPLES_PER_INTENT
    allow_conflicts: bool = False
    cv_folds: int | None = None  # K-fold cross-validation instead of the held-out test; never registers
    trials: int | None = None  # an Optuna study of this many trials per config with a `search:` section
    validation_fraction: float = 0.2  # share of the training data the trials are scored on
    pruning: bool = True  # successive halving: few epochs first, the best third gets more
    study_storage: str | None = None  # Optuna storage URL; default sqlite optuna.db in project_dir
    summary_json: Path | None = None
    report_md: Path | None = None
    data_token_env: str = remote.DEFAULT_TOKEN_ENV
    data_token_header: str = remote.DEFAULT_HEADER
    data_timeout: float = 30.0
    data_retries: int = 3
    project_dir: Path = field(default_factory=Path.cwd)

    def remote_source(self) -> remote.RemoteSource | None:
        if not remote.is_url(self.data):
            return None
        return remote.RemoteSource(
            str(self.data), self.data_token_env, self.data_token_header, self.data_timeout, self.data_retries
        )

    @property
    def primary_metric(self) -> str:
        return self.policy.primary_metric


FILE_KEYS = tuple(
    f.name for f in dataclasses.fields(WorkflowSettings) if f.name not in ("policy", "project_dir")
)


def read_workflow_file(path: Path) -> dict[str, Any]:
    """The settings in a workflow file, paths resolved against its folder; ``promotion`` kept as a mapping."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not readable as YAML ({type(exc).__name__}); fix the file.") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: must be a mapping of settings, e.g. `data: data/train.yml`.")
    unknown = sorted(set(document) - set(FILE_KEYS) - {"promotion"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], FILE_KEYS + ("promotion",), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(FILE_KEYS)}, promotion"
        raise InputError(f"{path}: unknown setting '{unknown[0]}'; {hint}")
    for key in PATH_KEYS:
        if document.get(key) is not None and not remote.is_url(document[key]):
            document[key] = (path.parent / str(document[key])).resolve()
    return document


def build(
    cli: dict[str, Any], workflow_file: Path | None = None, policy_overrides: dict[str, Any] | None = None
) -> WorkflowSettings:
    """Defaults < workflow file < command line (``None`` on the command line means "not given")."""
    document = read_workflow_file(workflow_file) if workflow_file else {}
    source = str(workflow_file) if workflow_file else "command line"
    policy = PromotionPolicy.from_mapping(document.pop("promotion", None), source)
    policy = policy.with_overrides(**(policy_overrides or {}))
    values = {**document, **{k: v for k, v in cli.items() if v is not None}}
    if values.get("data") is None:
        raise InputError(f"{source}: no training data; pass --data PATH or set `data:` in the workflow file.")
    for key in PATH_KEYS:
        if values.get(key) is not None and not remote.is_url(values[key]):
            values[key] = Path(values[key])
    for key in ("epochs", "trials"):  # 0: as configured, no search
        if values.get(key) == 0:
            values[key] = None
    return WorkflowSettings(**values, policy=policy)


def read_policy(workflow_file: Path | None) -> PromotionPolicy:
    """The ``promotion:`` section of a workflow file (the defaults without one)."""
    document = read_workflow_file(workflow_file) if workflow_file else {}
    return PromotionPolicy.from_mapping(document.get("promotion"), str(workflow_file or "defaults"))
