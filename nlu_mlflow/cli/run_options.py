"""The options of ``nlu-mlflow run``: one per field of the workflow file's schema (``workflow.schema``), plus
the command's own (which workflow file, lock, log, notifications, verbosity).

An option is named after its field and takes the field's type and description from the schema, so the
file, the options and their checks cannot drift apart; only what typer needs besides (an environment
variable, a short flag) is written here. ``signature`` turns the list into the command's parameters,
``split`` sorts the parsed values into the settings given (``None``: not given, so the workflow file and
the schema's defaults fill in) and the command's own.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import ModelField

from nlu_mlflow.workflow import schema
from nlu_mlflow.workflow.lock import DEFAULT_LOCK_FILE

NOTIFY_ENV = "NLU_MLFLOW_SLACK_URL"
EMPTY_VALUES = ("", "''")


@dataclass(frozen=True)
class RunOption:
    name: str  # the parameter: a field of the schema (``schema.option_targets``), or the command's own
    kind: Any  # the annotation typer parses
    option: Any  # typer.Option(...)
    default: Any = None


def _field(name: str) -> tuple[ModelField, type[BaseModel]]:
    model: type[BaseModel] = schema.WorkflowFile
    *sections, key = schema.option_targets()[name]
    for section in sections:
        model = schema.sections(model)[section]
    return next(f for f in model.__fields__.values() if f.alias == key), model


def _kind(field: ModelField, model: type[BaseModel]) -> Any:
    """What typer parses: numbers and flags as such; paths, URLs, choices and "number or off" as text, which
    the schema checks (an empty MLproject parameter must reach ``split`` as text to mean "not given")."""
    kind = field.type_
    if field.name in getattr(model, "OFF", ()) or not isinstance(kind, type):
        return str
    return next((k for k in (bool, int, float) if issubclass(kind, k)), str)


def setting(name: str, *decls: str, **kw: Any) -> RunOption:
    """The option that sets the schema field ``name``; a bool field is a ``--name/--no-name`` flag."""
    field, model = _field(name)
    kind = _kind(field, model)
    flag = name.replace("_", "-")
    decls = decls or ((f"--{flag}/--no-{flag}",) if kind is bool else ())
    default = "" if field.default is None or name == "model_name" else f" [{_shown(field.default)}]"
    help_text = (field.field_info.description or "") + default
    return RunOption(name, kind | None, typer.Option(*decls, help=help_text, **kw))


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _own(name: str, kind: Any, help: str, *decls: str, default: Any = None, **kw: Any) -> RunOption:
    return RunOption(name, kind, typer.Option(*decls, help=help, **kw), default)


OPTIONS: tuple[RunOption, ...] = (
    setting("data"),
    setting("project"),
    setting("test_stories"),
    setting("project_config"),
    setting("test_data"),
    setting("test_fraction"),
    setting("seed"),
    setting("configs"),
    setting("epochs"),
    setting("critical"),
    _own(
        "workflow_file",
        Path | None,
        "Workflow YAML with these settings and a `promotion:` section (docs/settings.md).",
        "--workflow",
    ),
    setting("experiment"),
    setting("tracking_uri", envvar="MLFLOW_TRACKING_URI"),
    setting("model_name"),
    setting("register"),
    setting("promote"),
    setting("primary_metric"),
    setting("min_gain"),
    setting("max_entity_f1_drop"),
    setting("allow_entity_loss"),
    setting("intent_min_support"),
    setting("max_intent_f1_drop"),
    setting("min_critical_pass_rate"),
    setting("min_conversation_pass_rate"),
    setting("max_core_action_f1_drop"),
    setting("significance_alpha"),
    setting("live_traffic", envvar="NLU_MLFLOW_LIVE_TRAFFIC"),
    setting("live_window"),
    setting("live_test_data"),
    setting("max_live_flip_rate"),
    setting("max_live_fallback_increase"),
    setting("min_live_intent_f1"),
    setting("min_live_messages"),
    setting("min_examples"),
    setting("allow_conflicts"),
    setting("cv_folds"),
    setting("backend"),
    setting("parallel"),
    setting("candidate_timeout"),
    setting("kubernetes_config"),
    setting("trials"),
    setting("validation_fraction"),
    setting("pruning"),
    setting("study_storage", envvar="NLU_MLFLOW_STUDY_STORAGE"),
    setting("finetune"),
    setting("finetune_only"),
    setting("epoch_fraction"),
    setting("full_retrain_every"),
    setting("full_retrain_growth"),
    setting("summary_json"),
    setting("report_md"),
    setting("data_token_env"),
    setting("data_token_header"),
    setting("data_timeout"),
    setting("data_retries"),
    _own(
        "lock_file",
        Path,
        "Lock that keeps two runs from overlapping (cron).",
        default=Path(DEFAULT_LOCK_FILE),
    ),
    _own("log_file", Path | None, "Also append the log to this file."),
    _own(
        "notify_env",
        str,
        "Env variable with a Slack-compatible webhook URL told about every run.",
        default=NOTIFY_ENV,
    ),
    _own(
        "verbose", bool, "More progress output and the libraries' warnings.", "--verbose", "-v", default=False
    ),
)


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
    settings: dict[str, Any]  # schema fields given on the command line (None: not given)
    own: dict[str, Any]  # the command's own: workflow_file, lock_file, log_file, notify_env, verbose


def split(values: dict[str, Any]) -> RunValues:
    """Sort parsed option values by what they set. An empty value is "not given" (an MLproject parameter left
    at its default ""): MLflow quotes it as ``''``, which reaches the command literally where no shell
    runs it (a Kubernetes Job's command list). A number given as text ("--significance-alpha 0.05", where
    "off" is the other choice) becomes a number, so the schema checks its range."""
    targets = schema.option_targets()
    off = {name for name in targets if name in getattr(_field(name)[1], "OFF", ())}
    values = {k: None if v in EMPTY_VALUES else _number(v) if k in off else v for k, v in values.items()}
    settings = {k: v for k, v in values.items() if k in targets}
    own = {k: v for k, v in values.items() if k not in targets}
    return RunValues(settings, own)


def _number(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return value
