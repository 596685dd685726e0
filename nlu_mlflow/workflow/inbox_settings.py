"""The workflow file's ``inbox:`` section (pydantic v1): where the tracker store and the inbox are, what is
masked, what makes a message worth a look. Command-line options override it."""

from __future__ import annotations

from pathlib import Path

import pydantic
import yaml

from nlu_mlflow import constants as c
from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.errors import InputError

SECTION = "inbox"


class InboxSettings(pydantic.BaseModel):
    """``inbox:`` in nlu-mlflow.yml. Paths are relative to the workflow file."""

    tracker_store: str | None = None  # an SQLAlchemy URL of Rasa's SQL tracker store
    endpoints: Path | None = None  # or the project's endpoints.yml (its `tracker_store:` section)
    inbox_url: str | None = None  # default: inbox.db beside the MLflow SQLite store
    data: Path | None = None  # the training data: texts already there are not queued
    model_name: str = c.DEFAULT_MODEL_NAME
    mask: bool = True
    sensitive_entities: list[str] = []
    margin: float = pydantic.Field(0.1, ge=0.0, le=1.0)
    frequent: int = pydantic.Field(5, ge=1)
    fallback_intents: list[str] = ["nlu_fallback"]
    fallback_actions: list[str] = ["action_default_fallback", "action_two_stage_fallback"]
    page_size: int = pydantic.Field(5000, ge=1, le=100_000)
    overlap: int = pydantic.Field(1000, ge=0)
    commit_every: int = pydantic.Field(
        50_000, ge=1
    )  # messages per inbox transaction (the watermark moves with it)

    class Config:
        extra = pydantic.Extra.forbid

    def rules(self) -> rules_of.Rules:
        return rules_of.Rules(
            margin=self.margin,
            frequent=self.frequent,
            mask=self.mask,
            sensitive_entities=frozenset(self.sensitive_entities),
            fallback_intents=frozenset(self.fallback_intents),
            fallback_actions=frozenset(self.fallback_actions),
        )


def read(workflow_file: Path | None, overrides: dict) -> InboxSettings:
    """The ``inbox:`` section of ``workflow_file`` (if given) with ``overrides`` (options given) on top."""
    section = _section(workflow_file) if workflow_file else {}
    values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    where = str(workflow_file) if workflow_file else "command line"
    try:
        return InboxSettings(**values)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{where}: inbox.{field}: {first['msg']}; fix the value.") from None


def _section(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"{path}: not readable as YAML ({type(error).__name__}); fix the file.") from None
    section = document.get(SECTION) or {} if isinstance(document, dict) else {}
    if not isinstance(section, dict):
        raise InputError(
            f"{path}: `inbox:` must be a mapping, e.g. `inbox: {{tracker_store: sqlite:///rasa.db}}`."
        )
    for key in ("endpoints", "data"):
        if section.get(key):
            section[key] = (path.parent / str(section[key])).resolve()
    return dict(section)
