"""Workflow settings: the schema's defaults, then a workflow YAML file, then command-line options, merged and
checked in one place (``build``); the keys themselves are declared once, in ``workflow.schema``.

A workflow file (e.g. ``nlu-mlflow.yml``) holds the same names as the ``run`` options, with the policy's in
its ``promotion:`` section; relative paths are read from the file's folder (docs/settings.md lists every
key)::

    data: data/pizza/train.yml
    test_data: data/pizza/test.yml
    epochs: 40
    promotion:
      min_gain: 0.0

A problem is one sentence naming the file (or the option), the key and the fix, e.g.
``wf.yml: unknown setting 'epohcs'; did you mean 'epochs'?``, raised as ``InputError`` with every problem.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nlu_mlflow.decide.model_kind import default_model_name
from nlu_mlflow.decide.promotion import PromotionPolicy
from nlu_mlflow.errors import InputError
from nlu_mlflow.workflow import remote, schema
from nlu_mlflow.workflow.schema import BACKENDS, KUBERNETES_CONFIG, WorkflowFile, WorkflowSettings

__all__ = ["BACKENDS", "KUBERNETES_CONFIG", "WorkflowSettings", "build", "read_policy", "summary_path"]

COMMAND_LINE = "command line"


def read_workflow_file(path: Path) -> dict[str, Any]:
    """The mapping a workflow file holds, relative paths resolved against its folder (not yet checked)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not readable as YAML ({type(exc).__name__}); fix the file.") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: must be a mapping of settings, e.g. `data: data/train.yml`.")
    return _resolve_paths(WorkflowFile, document, path.parent)


def _resolve_paths(model: type[BaseModel], document: dict[str, Any], folder: Path) -> dict[str, Any]:
    resolved = dict(document)
    nested = schema.sections(model)
    for field in model.__fields__.values():
        value = resolved.get(field.alias)
        if field.alias in nested and isinstance(value, dict):
            resolved[field.alias] = _resolve_paths(nested[field.alias], value, folder)
        elif isinstance(value, str) and schema.is_path_field(field) and not remote.is_url(value):
            resolved[field.alias] = (folder / value).resolve()
    return resolved


def build(
    cli: dict[str, Any], workflow_file: Path | None = None, policy_overrides: dict[str, Any] | None = None
) -> WorkflowSettings:
    """Defaults < workflow file < command line. ``cli`` holds ``run`` options by name (``None``: not given),
    the policy's among them or in ``policy_overrides``; extra keys set ``WorkflowSettings`` fields that have
    no option (``project_dir``)."""
    document = read_workflow_file(workflow_file) if workflow_file else {}
    given = {k: v for k, v in {**cli, **(policy_overrides or {})}.items() if v is not None}
    merged, from_cli = merge(document, given)
    try:
        return WorkflowSettings(**merged)
    except ValidationError as error:
        source = str(workflow_file) if workflow_file else COMMAND_LINE
        raise InputError(problems(error, merged, from_cli, source)) from None


def merge(document: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], set[tuple[str, ...]]]:
    """The file's values with the command line's over them (each option lands where its field lives, e.g.
    ``min_gain`` in ``promotion``), and where the command line set one."""
    targets = schema.option_targets()
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in document.items()}
    from_cli = set()
    for name, value in given.items():
        where = targets.get(name, (name,))
        if len(where) == 2:
            section = merged.get(where[0])
            merged[where[0]] = {**(section if isinstance(section, dict) else {}), where[1]: value}
        else:
            merged[name] = value
        from_cli.add(where)
    return merged, from_cli


def problems(error: ValidationError, merged: dict, from_cli: set[tuple[str, ...]], source: str) -> list[str]:
    """pydantic's errors as the project's sentences: the file or option, the key, what it takes, the fix."""
    found = []
    for item in error.errors():
        loc = tuple(str(x) for x in item["loc"])
        if loc == ("__root__",):
            found += [f"{source}: {line}." for line in item["msg"].splitlines()]
        elif item["type"] == "value_error.extra":
            found.append(_unknown(source, loc))
        else:
            found.append(_wrong(loc, _value(merged, loc), loc in from_cli, source))
    return list(dict.fromkeys(found))


def _unknown(source: str, loc: tuple[str, ...]) -> str:
    *path, key = loc
    model = schema.sections().get(path[0], WorkflowFile) if path else WorkflowFile
    known = [f.alias for f in model.__fields__.values()]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(known)}"
    return f"{source}: unknown setting '{'.'.join(loc)}'; {hint}"


def _wrong(loc: tuple[str, ...], value: Any, on_cli: bool, source: str) -> str:
    model: type[BaseModel] = WorkflowFile
    for key in loc[:-1]:
        model = schema.sections(model)[key]
    field = next(f for f in model.__fields__.values() if f.alias == loc[-1])
    example = (field.field_info.extra.get("examples") or [field.default])[0]
    if loc[-1] in schema.sections(model):  # a section: show one of its keys
        first = next(iter(schema.sections(model)[loc[-1]].__fields__.values()))
        example = (
            f"{{{first.alias}: {_text((first.field_info.extra.get('examples') or [first.default])[0])}}}"
        )
    takes = f"must be {schema.requirement(field, getattr(model, 'OFF', ()))}"
    hint = _did_you_mean(field, value)
    if on_cli:
        flag = "--" + loc[-1].replace("_", "-")
        return f"{COMMAND_LINE}: {flag} {value!r} {takes}{hint}; pass e.g. {flag} {_text(example)}."
    *path, key = loc
    under = f" under `{'.'.join(path)}:`" if path else ""
    return f"{source}: {'.'.join(loc)} {value!r} {takes}{hint}; set e.g. `{key}: {_text(example)}`{under}."


def _did_you_mean(field, value: Any) -> str:
    choices = getattr(field.type_, "__args__", None) if field.name == "backend" else None
    close = difflib.get_close_matches(str(value), choices, n=1) if choices else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _value(merged: dict[str, Any], loc: tuple[str, ...]) -> Any:
    value: Any = merged
    for key in loc:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _text(example: Any) -> str:
    return str(example).lower() if isinstance(example, bool) else str(example)


def read_policy(workflow_file: Path | None) -> PromotionPolicy:
    """The ``promotion:`` section of a workflow file, the whole file checked (the defaults without one)."""
    if workflow_file is None:
        return schema.Promotion().policy()
    document = read_workflow_file(workflow_file)
    try:
        return WorkflowFile(**document).promotion.policy()
    except ValidationError as error:
        raise InputError(problems(error, document, set(), str(workflow_file))) from None


def summary_path(cli: dict[str, Any], workflow_file: Path | None) -> Path | None:
    """Where the summary JSON goes: the command line's, else the workflow file's (read without checking the
    rest of the file, which may be what fails)."""
    if cli.get("summary_json"):
        return Path(cli["summary_json"])
    try:
        document = read_workflow_file(workflow_file) if workflow_file else {}
    except InputError:
        return None
    found = document.get("summary_json")
    return Path(found) if isinstance(found, str | Path) else None


def model_name_hint(cli: dict[str, Any], workflow_file: Path | None) -> str:
    """The model a run was about, for a summary written before the settings could be built."""
    try:
        document = read_workflow_file(workflow_file) if workflow_file else {}
    except InputError:
        document = {}
    values = {**document, **{k: v for k, v in cli.items() if v is not None}}
    return str(values.get("model_name") or default_model_name(values.get("project") is not None))
