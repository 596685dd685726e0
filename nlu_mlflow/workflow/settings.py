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
    finetune: true           # fine-tune from production where Rasa can (see README)
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

BACKENDS = ("inline", "local", "kubernetes")
KUBERNETES_CONFIG = Path("deploy/kubernetes/kubernetes_config.json")

PATH_KEYS = (
    "kubernetes_config",
    "data",
    "project",
    "test_data",
    "test_stories",
    "configs",
    "critical",
    "summary_json",
    "report_md",
)


@dataclass(frozen=True)
class WorkflowSettings:
    data: Path | str | None = None  # a file, a folder, or an http(s) URL (None: the project's data/)
    test_data: Path | None = None
    project: Path | None = None  # a whole Rasa project (config, domain, data/, tests/)
    test_stories: Path | None = None  # test conversations (default: the project's tests/)
    project_config: bool = True  # train the project's own config.yml as candidate `project`
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
    allow_conflicts: bool | None = None  # None: an error for NLU data, a warning in a project (as Rasa)
    cv_folds: int | None = None  # K-fold cross-validation instead of the held-out test; never registers
    trials: int | None = None  # an Optuna study of this many trials per config with a `search:` section
    validation_fraction: float = 0.2  # share of the training data the trials are scored on
    pruning: bool = True  # successive halving: few epochs first, the best third gets more
    study_storage: str | None = None  # Optuna storage URL; default sqlite optuna.db in project_dir
    finetune: bool = False  # also fine-tune from production where Rasa can (candidate <config>@finetuned)
    finetune_only: bool = False  # ... and skip the from-scratch candidates then (with periodic full retrains)
    epoch_fraction: float = 0.2  # share of each component's epochs a fine-tune trains
    full_retrain_every: int | None = (
        7  # --finetune-only: from scratch when production is fine-tune N-1 in a row
    )
    full_retrain_growth: float | None = (
        0.2  # --finetune-only: from scratch when the data grew by more than this
    )
    summary_json: Path | None = None
    report_md: Path | None = None
    data_token_env: str = remote.DEFAULT_TOKEN_ENV
    data_token_header: str = remote.DEFAULT_HEADER
    data_timeout: float = 30.0
    data_retries: int = 3
    backend: str = "inline"  # where candidates train: inline | local | kubernetes (workflow.backends)
    parallel: int = 1  # candidates at a time on the local and kubernetes backends
    candidate_timeout: float = 6 * 3600.0  # seconds a submitted candidate may take
    kubernetes_config: Path = KUBERNETES_CONFIG
    project_dir: Path = field(default_factory=Path.cwd)

    @property
    def conflicts_allowed(self) -> bool:
        """The same text under two intents: allowed (a warning) in a project run, as ``rasa data validate``
        treats it, an error for NLU data; ``allow_conflicts`` decides when set."""
        return self.project is not None if self.allow_conflicts is None else self.allow_conflicts

    def remote_source(self) -> remote.RemoteSource | None:
        if self.data is None or not remote.is_url(self.data):
            return None
        return remote.RemoteSource(
            str(self.data), self.data_token_env, self.data_token_header, self.data_timeout, self.data_retries
        )

    @property
    def primary_metric(self) -> str:
        return self.policy.primary_metric

    @property
    def finetuning(self) -> bool:
        return self.finetune or self.finetune_only


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
    if values.get("data") is None and values.get("project") is None:
        raise InputError(
            f"{source}: no training data; pass --data PATH or --project DIR (or set `data:` or `project:` in "
            "the workflow file)."
        )
    if values.get("data") is not None and values.get("project") is not None:
        raise InputError(
            f"{source}: --data and --project both given; a project's NLU data is its data/ folder, so pass "
            "one of them."
        )
    if values.get("test_stories") is not None and values.get("project") is None:
        raise InputError(
            f"{source}: --test-stories needs --project (test conversations run a whole assistant, which is "
            "trained from a project's domain and stories)."
        )
    for key in PATH_KEYS:
        if values.get(key) is not None and not remote.is_url(values[key]):
            values[key] = Path(values[key])
    for key in ("epochs", "trials"):  # 0: as configured, no search
        if values.get(key) == 0:
            values[key] = None
    if values.get("full_retrain_every") == 0:
        values["full_retrain_every"] = None
    _check_backend(source, values)
    check_finetune(values, source)
    return WorkflowSettings(**values, policy=policy)


def _check_backend(source: str, values: dict[str, Any]) -> None:
    backend = values.get("backend", "inline")
    if backend not in BACKENDS:
        close = difflib.get_close_matches(str(backend), BACKENDS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(BACKENDS)}"
        raise InputError(f"{source}: backend '{backend}' is not known; {hint}.")
    if int(values.get("parallel", 1)) < 1:
        raise InputError(
            f"{source}: parallel must be at least 1, got {values['parallel']}; e.g. --parallel 2."
        )
    if backend == "kubernetes" and not Path(values.get("kubernetes_config", KUBERNETES_CONFIG)).is_file():
        raise InputError(
            f"{source}: backend kubernetes needs a kubernetes config (--kubernetes-config, default "
            f"{KUBERNETES_CONFIG}); see docs/shared-server.md for what it holds."
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_finetune(values: dict[str, Any], source: str) -> None:
    """The fine-tuning settings, one sentence naming the setting and the fix when one is wrong."""
    if values.get("finetune_only") and values.get("finetune") is False:
        raise InputError(
            f"{source}: --finetune-only needs fine-tuning, which --no-finetune (or `finetune: false`) turns "
            "off; drop one of them."
        )
    fraction = values.get("epoch_fraction", 0.2)
    if not _number(fraction) or not 0 < fraction <= 1:
        raise InputError(
            f"{source}: epoch_fraction {fraction!r} must be a number above 0 and at most 1 (the share of "
            "each component's epochs a fine-tune trains); pass e.g. --epoch-fraction 0.2."
        )
    every = values.get("full_retrain_every")
    if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
        raise InputError(
            f"{source}: full_retrain_every {every!r} must be a whole number of runs, at least 1 (or null/0 "
            "for never); pass e.g. --full-retrain-every 7."
        )
    growth = values.get("full_retrain_growth")
    if growth is not None and (not _number(growth) or growth < 0):
        raise InputError(
            f"{source}: full_retrain_growth {growth!r} must be a share of at least 0 (or null for never), "
            "e.g. 0.2 for 20% more examples; pass e.g. --full-retrain-growth 0.2."
        )


def read_policy(workflow_file: Path | None) -> PromotionPolicy:
    """The ``promotion:`` section of a workflow file (the defaults without one)."""
    document = read_workflow_file(workflow_file) if workflow_file else {}
    return PromotionPolicy.from_mapping(document.get("promotion"), str(workflow_file or "defaults"))
