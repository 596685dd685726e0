"""The options of ``nlu-mlflow run``, declared once.

Each option's name is the ``WorkflowSettings`` field, the ``PromotionPolicy`` field or the command's own
setting it sets; ``signature`` turns the list into the command's parameters, ``split`` sorts the parsed
values into settings, policy overrides and the command's own. ``None`` means "not given", so the workflow
file and the defaults fill in.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nlu_mlflow import constants as c
from nlu_mlflow.decide.promotion import PromotionPolicy
from nlu_mlflow.workflow.lock import DEFAULT_LOCK_FILE
from nlu_mlflow.workflow.settings import WorkflowSettings

NOTIFY_ENV = "NLU_MLFLOW_SLACK_URL"
EMPTY_VALUES = ("", "''")


@dataclass(frozen=True)
class RunOption:
    name: str  # the parameter: a WorkflowSettings or PromotionPolicy field, or the command's own
    kind: Any  # the annotation typer parses
    option: Any  # typer.Option(...)
    default: Any = None


def _opt(name: str, kind: Any, help: str, *decls: str, default: Any = None, **kw: Any) -> RunOption:
    return RunOption(name, kind, typer.Option(*decls, help=help, **kw), default)


OPTIONS: tuple[RunOption, ...] = (
    _opt("data", str | None, "Rasa NLU training data: a YAML/JSON file, a folder, or an http(s) URL."),
    _opt(
        "project",
        str | None,
        "A whole Rasa project (config.yml, domain.yml, data/, tests/): every candidate is trained as a full "
        "assistant with the project's policies, and its config.yml is a candidate named `project`.",
    ),
    _opt(
        "test_stories",
        str | None,
        "Test conversations (file or folder) for --project [the project's tests/].",
    ),
    _opt(
        "project_config",
        bool | None,
        "Train the project's own config.yml as a candidate.",
        "--project-config/--no-project-config",
    ),
    _opt(
        "test_data",
        str | None,
        "Held-out Rasa NLU test data [a project's tests/ NLU files]; without it a stratified split is used.",
    ),
    _opt("test_fraction", float | None, "Share of --data held out when no --test-data [0.2]."),
    _opt("seed", int | None, "Seed for the split and for components' random_seed [42]."),
    _opt("configs", Path | None, "Folder of Rasa pipeline configs, or one config [configs]."),
    _opt("epochs", int | None, "Cap on training epochs for every pipeline (0: as configured).", min=0),
    _opt("critical", str | None, "Critical-utterance suite (YAML) every candidate must pass."),
    _opt(
        "workflow_file",
        Path | None,
        "Workflow YAML with these settings and a `promotion:` section.",
        "--workflow",
    ),
    _opt("experiment", str | None, f"MLflow experiment name [{c.DEFAULT_EXPERIMENT}]."),
    _opt(
        "tracking_uri",
        str | None,
        "MLflow tracking URI (default: sqlite:///mlruns.db here).",
        envvar="MLFLOW_TRACKING_URI",
    ),
    _opt("model_name", str | None, f"Registered model name [{c.DEFAULT_MODEL_NAME}]."),
    _opt("register", bool | None, "Register the best candidate.", "--register/--no-register"),
    _opt("promote", bool | None, "Move `production` when the candidate wins.", "--promote/--no-promote"),
    _opt("primary_metric", str | None, "Metric that picks the best and must improve."),
    _opt("min_gain", float | None, "Required gain over production on the primary metric."),
    _opt("max_entity_f1_drop", float | None, "Largest allowed entity F1 drop."),
    _opt(
        "allow_entity_loss",
        bool | None,
        "Let a candidate without entity scores replace one that extracts entities.",
        "--allow-entity-loss/--no-allow-entity-loss",
    ),
    _opt("intent_min_support", int | None, "Per-intent guard: intents with this many test examples."),
    _opt("max_intent_f1_drop", float | None, "Per-intent guard: largest allowed F1 drop."),
    _opt("min_critical_pass_rate", float | None, "Critical pass rate a candidate must reach."),
    _opt(
        "min_conversation_pass_rate",
        float | None,
        "Share of the test conversations a whole assistant must pass [1.0].",
    ),
    _opt(
        "max_core_action_f1_drop",
        str | None,
        "Largest allowed drop of core_action_f1_weighted against production ('off' to disable) [off].",
    ),
    _opt(
        "significance_alpha",
        str | None,
        "McNemar test on per-utterance correctness at this alpha ('off' to disable).",
    ),
    _opt("min_examples", int | None, "Fewest training examples an intent may have [2].", min=1),
    _opt(
        "allow_conflicts",
        bool | None,
        "Accept the same text under two intents (default: yes with a warning in a --project run, as Rasa; "
        "no for NLU data).",
        "--allow-conflicts/--no-allow-conflicts",
    ),
    _opt(
        "cv_folds",
        int | None,
        "Cross-validate every pipeline with K seeded stratified folds of --data instead of "
        "evaluating on the test data; logs mean, std and per-fold values; registers nothing.",
        min=2,
    ),
    _opt(
        "backend",
        str | None,
        "Where candidates train: inline (this process, one after another), local (an MLflow Project run "
        "per candidate in a subprocess) or kubernetes (a Job per candidate, deploy/kubernetes/) [inline].",
    ),
    _opt("parallel", int | None, "Candidates at a time on the local and kubernetes backends [1].", min=1),
    _opt("candidate_timeout", float | None, "Seconds a submitted candidate may run [21600].", min=1),
    _opt(
        "kubernetes_config",
        Path | None,
        "MLflow's Kubernetes backend config [deploy/kubernetes/kubernetes_config.json].",
    ),
    _opt(
        "trials",
        int | None,
        "Optuna trials per config with a `search:` section, scored on a validation split of the "
        "training data; the best trial's config is then trained and tested (0: configs as written).",
        min=0,
    ),
    _opt("validation_fraction", float | None, "Share of the training data the trials are scored on [0.2]."),
    _opt(
        "pruning",
        bool | None,
        "Stop bad trials early (successive halving on epochs: the best third trains 3x longer; default on).",
        "--pruning/--no-pruning",
    ),
    _opt(
        "study_storage",
        str | None,
        "Optuna storage URL the trials share (tune-worker joins it; default: sqlite optuna.db here).",
        envvar="NLU_MLFLOW_STUDY_STORAGE",
    ),
    _opt(
        "finetune",
        bool | None,
        "Also train `<config>@finetuned` from the production model's weights (Rasa's fine-tuning) when "
        "production was trained from that config and Rasa can fine-tune it on this data; else say why.",
        "--finetune/--no-finetune",
    ),
    _opt(
        "finetune_only",
        bool | None,
        "Skip the from-scratch candidates when fine-tuning is possible (the fast nightly mode), with a full "
        "retrain from time to time (--full-retrain-every, --full-retrain-growth).",
        "--finetune-only/--no-finetune-only",
    ),
    _opt("epoch_fraction", float | None, "Share of each component's epochs a fine-tune trains [0.2]."),
    _opt(
        "full_retrain_every",
        int | None,
        "--finetune-only: train from scratch when production is already fine-tune N-1 in a row "
        "(0: never) [7].",
        min=0,
    ),
    _opt(
        "full_retrain_growth",
        float | None,
        "--finetune-only: train from scratch when the data grew by more than this share since production's "
        "training data [0.2].",
    ),
    _opt("summary_json", Path | None, "Write the decision summary as JSON here."),
    _opt("report_md", Path | None, "Write the markdown comparison report here."),
    _opt(
        "data_token_env", str | None, "Env variable holding the token for URL --data [NLU_MLFLOW_DATA_TOKEN]."
    ),
    _opt("data_token_header", str | None, "Header carrying that token [Authorization: Bearer <token>]."),
    _opt("data_timeout", float | None, "Seconds to wait for URL --data [30]."),
    _opt("data_retries", int | None, "Retries for URL --data, with backoff [3].", min=0),
    _opt(
        "lock_file",
        Path,
        "Lock that keeps two runs from overlapping (cron).",
        default=Path(DEFAULT_LOCK_FILE),
    ),
    _opt("log_file", Path | None, "Also append the log to this file."),
    _opt(
        "notify_env",
        str,
        "Env variable with a Slack-compatible webhook URL told about every run.",
        default=NOTIFY_ENV,
    ),
    _opt(
        "verbose", bool, "More progress output and the libraries' warnings.", "--verbose", "-v", default=False
    ),
)

SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(WorkflowSettings))
POLICY_FIELDS = frozenset(f.name for f in dataclasses.fields(PromotionPolicy))


def signature() -> inspect.Signature:
    """The ``run`` command's parameters, as typer reads them."""
    return inspect.Signature(
        [
            inspect.Parameter(
                o.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=o.default,
                annotation=Annotated[o.kind, o.option],
            )
            for o in OPTIONS
        ]
    )


@dataclass(frozen=True)
class RunValues:
    settings: dict[str, Any]  # WorkflowSettings fields given on the command line
    policy: dict[str, Any]  # PromotionPolicy overrides
    own: dict[str, Any]  # the command's own: workflow_file, lock_file, log_file, notify_env, verbose


def split(values: dict[str, Any]) -> RunValues:
    """Sort parsed option values by what they set. An empty value is "not given" (an MLproject parameter left
    at its default ""): MLflow quotes it as ``''``, which reaches the command literally where no shell
    runs it (a Kubernetes Job's command list)."""
    values = {k: None if v in EMPTY_VALUES else v for k, v in values.items()}
    settings = {k: v for k, v in values.items() if k in SETTINGS_FIELDS}
    policy = {k: v for k, v in values.items() if k in POLICY_FIELDS}
    own = {k: v for k, v in values.items() if k not in SETTINGS_FIELDS | POLICY_FIELDS}
    return RunValues(settings, policy, own)
