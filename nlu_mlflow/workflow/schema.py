"""The schema of the workflow file (``nlu-mlflow.yml``) and of ``nlu-mlflow run``'s settings, declared once.

Every key is a typed, range-checked pydantic field with its default, its description and an example; the
same model validates the file, the command-line options (``settings.build`` merges them, the command line
winning), prints the JSON Schema an editor validates the file with (``nlu-mlflow schema``) and writes the
key table of docs/settings.md. A section of the file is a nested ``Section`` model: ``promotion:`` is
``Promotion``, which hands the pure decision its ``decide.promotion.PromotionPolicy``.

Adding a section (e.g. ``inbox:``): subclass ``Section`` with its fields, add ``inbox: Inbox =
Field(default_factory=Inbox, description=...)`` to ``WorkflowFile``; the file, the JSON Schema, the error
messages (with "did you mean") and docs/settings.md follow. A field name must be unique across the file's
top level and its sections, since a ``run`` option is named after its field alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Extra, Field, root_validator, validator
from pydantic.fields import ModelField

from nlu_mlflow import constants as c
from nlu_mlflow.decide import model_kind
from nlu_mlflow.decide import promotion as rules
from nlu_mlflow.workflow import remote

BACKENDS = ("inline", "local", "kubernetes")
KUBERNETES_CONFIG = Path("deploy/kubernetes/kubernetes_config.json")
OFF_WORDS = ("off", "none", "false")  # what turns an optional check off besides null


class Section(BaseModel):
    """A mapping of the workflow file: unknown keys are errors, values are checked as written (a number must
    be a number, not text or true/false), the model cannot change once built."""

    OFF: ClassVar[tuple[str, ...]] = ()  # fields that null, false or "off" turn off

    class Config:
        extra = Extra.forbid
        allow_mutation = False
        allow_population_by_field_name = True  # `register` is `register_best` (BaseModel has a `register`)

        @staticmethod
        def schema_extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
            _nullable(schema, model)

    @validator("*", pre=True)
    def _as_written(cls, value: Any, field: ModelField) -> Any:
        if field.name in cls.OFF and _is_off(value):
            return None
        if value is None or not isinstance(field.type_, type) or _type_matches(field.type_, value):
            return value
        raise TypeError(f"must be {requirement(field, cls.OFF)}")


def _is_off(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() in OFF_WORDS)


def _type_matches(kind: type, value: Any) -> bool:
    if issubclass(kind, bool):
        return isinstance(value, bool)
    if issubclass(kind, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if issubclass(kind, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if issubclass(kind, str):
        return isinstance(value, str)
    if issubclass(kind, Path):
        return isinstance(value, str | Path)
    return True


def _nullable(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """pydantic v1 leaves ``null`` out of an optional field's JSON Schema; a file may write it."""
    off = getattr(model, "OFF", ())
    for name, field in model.__fields__.items():
        prop = schema.get("properties", {}).get(field.alias)
        if prop is None or not field.allow_none:
            continue
        kept = {k: prop.pop(k) for k in ("title", "description", "default", "examples") if k in prop}
        choices = [dict(prop), {"type": "null"}] + ([{"enum": [False, "off"]}] if name in off else [])
        prop.clear()
        prop.update(kept, anyOf=choices)


class Promotion(Section):
    """The rules a candidate must pass to replace production (``decide.promotion``)."""

    OFF: ClassVar[tuple[str, ...]] = (
        "significance_alpha",
        "max_core_action_f1_drop",
        "max_live_flip_rate",
        "max_live_fallback_increase",
        "min_live_intent_f1",
    )

    primary_metric: str = Field(
        default=c.DEFAULT_PRIMARY_METRIC,
        min_length=1,
        description="Metric that picks the best candidate and must improve on production.",
        examples=[c.INTENT_F1_MACRO],
    )
    min_gain: float = Field(
        default=rules.DEFAULT_MIN_GAIN,
        ge=0,
        description="The candidate must beat production on the primary metric by more than this "
        "(0: any gain).",
        examples=[0.01],
    )
    max_entity_f1_drop: float = Field(
        default=rules.DEFAULT_MAX_ENTITY_F1_DROP,
        ge=0,
        description="Largest allowed entity F1 drop.",
        examples=[0.02],
    )
    allow_entity_loss: bool = Field(
        default=rules.DEFAULT_ALLOW_ENTITY_LOSS,
        description="Let a candidate without entity scores replace one that extracts entities.",
        examples=[True],
    )
    intent_min_support: int = Field(
        default=rules.DEFAULT_INTENT_MIN_SUPPORT,
        ge=1,
        description="Per-intent guard: intents with at least this many test examples.",
        examples=[5],
    )
    max_intent_f1_drop: float = Field(
        default=rules.DEFAULT_MAX_INTENT_F1_DROP,
        ge=0,
        description="Per-intent guard: largest F1 drop any of those intents may have.",
        examples=[0.1],
    )
    min_critical_pass_rate: float = Field(
        default=rules.DEFAULT_MIN_CRITICAL_PASS_RATE,
        ge=0,
        le=1,
        description="Share of the critical utterances a candidate must pass.",
        examples=[1.0],
    )
    min_conversation_pass_rate: float = Field(
        default=rules.DEFAULT_MIN_CONVERSATION_PASS_RATE,
        ge=0,
        le=1,
        description="Share of the test conversations a whole assistant must pass.",
        examples=[1.0],
    )
    max_core_action_f1_drop: float | None = Field(
        default=rules.DEFAULT_MAX_CORE_ACTION_F1_DROP,
        ge=0,
        description="Largest allowed drop of core_action_f1_weighted against production "
        "(null or off: no check).",
        examples=[0.02],
    )
    significance_alpha: float | None = Field(
        default=rules.DEFAULT_SIGNIFICANCE_ALPHA,
        gt=0,
        lt=1,
        description="McNemar test on per-utterance intent correctness at this alpha (null or off: no test).",
        examples=[0.05],
    )

    max_live_flip_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Replay of live traffic (live_traffic): largest share of the window's messages whose "
        "intent may change from production's (null or off: no gate).",
        examples=[0.05],
    )
    max_live_fallback_increase: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Replay of live traffic: largest rise of the fallback rate against production "
        "(null or off: no gate).",
        examples=[0.01],
    )
    min_live_intent_f1: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Least live_intent_f1_weighted on the live test set (live_test_data) "
        "(null or off: no gate).",
        examples=[0.85],
    )
    min_live_messages: int = Field(
        default=rules.DEFAULT_MIN_LIVE_MESSAGES,
        ge=1,
        description="Fewest live messages (replayed, or in the live test set) a live gate needs; with fewer "
        "the gate is skipped and the decision says so.",
        examples=[200],
    )

    def policy(self) -> rules.PromotionPolicy:
        return rules.PromotionPolicy(**self.dict())


class WorkflowFile(Section):
    """The keys of a workflow file (``nlu-mlflow run --workflow FILE``); each is also a ``run`` option."""

    class Config:
        title = "nlu-mlflow workflow file (nlu-mlflow.yml)"

    data: str | Path | None = Field(
        default=None,
        description="Rasa NLU training data: a YAML/JSON file, a folder, or an http(s) URL "
        "(null: the project's data/).",
        examples=["data/pizza/train.yml"],
    )
    test_data: Path | None = Field(
        default=None,
        description="Held-out Rasa NLU test data "
        "(null: a project's tests/ NLU files, else a stratified split).",
        examples=["data/pizza/test.yml"],
    )
    project: Path | None = Field(
        default=None,
        description="A whole Rasa project (config.yml, domain.yml, data/, tests/): every candidate is "
        "trained as a full assistant with the project's policies, and its config.yml is a candidate "
        "named `project`.",
        examples=["data/pizza-assistant"],
    )
    test_stories: Path | None = Field(
        default=None,
        description="Test conversations (file or folder) for a project (null: the project's tests/).",
        examples=["data/pizza-assistant/tests"],
    )
    project_config: bool = Field(
        default=True, description="Train the project's own config.yml as a candidate."
    )
    test_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the data held out when no test data is given.",
        examples=[0.2],
    )
    seed: int = Field(
        default=c.DEFAULT_SEED,
        ge=0,
        description="Seed for the split and for components' random_seed.",
        examples=[42],
    )
    configs: Path = Field(
        default=Path("configs"),
        description="Folder of Rasa pipeline configs, or one config.",
        examples=["configs"],
    )
    epochs: int | None = Field(
        default=None,
        ge=0,
        description="Cap on training epochs for every pipeline (null or 0: as each config says).",
        examples=[40],
    )
    critical: Path | None = Field(
        default=None,
        description="Critical-utterance suite (YAML) every candidate must pass.",
        examples=["critical.yml"],
    )
    experiment: str = Field(default=c.DEFAULT_EXPERIMENT, min_length=1, description="MLflow experiment name.")
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI (null: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the folder "
        "the run starts in).",
        examples=["http://127.0.0.1:5000"],
    )
    model_name: str | None = Field(
        default=None,
        min_length=1,
        description=f"Registered model name (null: {model_kind.default_model_name(True)} when a project is "
        f"given, {model_kind.default_model_name(False)} for NLU data alone).",
        examples=["pizza-assistant"],
    )
    register_best: bool = Field(default=True, alias="register", description="Register the best candidate.")
    promote: bool = Field(default=True, description="Move `production` when the candidate wins.")
    min_examples: int = Field(
        default=c.DEFAULT_MIN_EXAMPLES_PER_INTENT,
        ge=1,
        description="Fewest training examples an intent may have.",
        examples=[2],
    )
    allow_conflicts: bool | None = Field(
        default=None,
        description="Accept the same text under two intents "
        "(null: yes with a warning in a project, as Rasa; no for NLU data).",
        examples=[True],
    )
    cv_folds: int | None = Field(
        default=None,
        ge=2,
        description="Cross-validate every pipeline with K seeded stratified folds of the data instead of the "
        "test data; logs mean, std and per-fold values; registers nothing.",
        examples=[5],
    )
    trials: int | None = Field(
        default=None,
        ge=0,
        description="Optuna trials per config with a `search:` section, scored on a validation split of the "
        "training data (null or 0: configs as written).",
        examples=[20],
    )
    validation_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the training data the trials are scored on.",
        examples=[0.2],
    )
    pruning: bool = Field(
        default=True,
        description="Stop bad trials early (successive halving on epochs: the best third trains 3x longer).",
    )
    study_storage: str | None = Field(
        default=None,
        description="Optuna storage URL the trials share (null: sqlite optuna.db where the run starts).",
        examples=["postgresql://optuna@db/optuna"],
    )
    finetune: bool = Field(
        default=False,
        description="Also train `<config>@finetuned` from the production model's weights when production was "
        "trained from that config and Rasa can fine-tune it on this data.",
    )
    finetune_only: bool = Field(
        default=False,
        description="Skip the from-scratch candidates when fine-tuning is possible, with a full retrain "
        "from time to time (full_retrain_every, full_retrain_growth).",
    )
    epoch_fraction: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Share of each component's epochs a fine-tune trains.",
        examples=[0.2],
    )
    full_retrain_every: int | None = Field(
        default=7,
        ge=0,
        description="With finetune_only: train from scratch when production is already fine-tune N-1 "
        "in a row (null or 0: never).",
        examples=[7],
    )
    full_retrain_growth: float | None = Field(
        default=0.2,
        ge=0,
        description="With finetune_only: train from scratch when the data grew by more than this share since "
        "production's training data (null: never).",
        examples=[0.2],
    )
    summary_json: Path | None = Field(
        default=None, description="Write the decision summary as JSON here.", examples=["last-run.json"]
    )
    report_md: Path | None = Field(
        default=None, description="Write the markdown comparison report here.", examples=["report.md"]
    )
    data_token_env: str = Field(
        default=remote.DEFAULT_TOKEN_ENV,
        min_length=1,
        description="Environment variable holding the token for URL data.",
    )
    data_token_header: str = Field(
        default=remote.DEFAULT_HEADER,
        min_length=1,
        description="Header carrying that token "
        "(Authorization: `Bearer <token>`; any other: the bare token).",
    )
    data_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for URL data.", examples=[30]
    )
    data_retries: int = Field(
        default=3, ge=0, description="Retries for URL data, with backoff.", examples=[3]
    )
    backend: Literal["inline", "local", "kubernetes"] = Field(
        default="inline",
        description="Where candidates train: inline (this process, one after another), local (an MLflow "
        "Project run per candidate in a subprocess) or kubernetes (a Job per candidate, deploy/kubernetes/).",
        examples=["local"],
    )
    parallel: int = Field(
        default=1,
        ge=1,
        description="Candidates at a time on the local and kubernetes backends.",
        examples=[2],
    )
    candidate_timeout: float = Field(
        default=6 * 3600.0, ge=1, description="Seconds a submitted candidate may run.", examples=[21600]
    )
    kubernetes_config: Path = Field(
        default=KUBERNETES_CONFIG, description="MLflow's Kubernetes backend config (backend kubernetes)."
    )
    live_traffic: str | None = Field(
        default=None,
        description="Rasa's SQL tracker store (an SQLAlchemy URL, or the project's endpoints.yml): its user "
        "messages of the last live_window are replayed through the best candidate and production before the "
        "decision (null: no replay).",
        examples=["sqlite:///rasa.db"],
    )
    live_window: str = Field(
        default="7d",
        regex=r"^\s*[1-9][0-9]*\s*[hdw]\s*$",
        description="How far back the replay reads live traffic: hours, days or weeks.",
        examples=["7d"],
    )
    live_test_data: Path | None = Field(
        default=None,
        description="Annotated live messages kept apart as NLU test data (`inbox pull` writes a seeded share "
        "there): every candidate and production are scored on them as live_intent_accuracy and "
        "live_intent_f1_weighted.",
        examples=["tests/live"],
    )
    promotion: Promotion = Field(
        default_factory=Promotion, description="The rules a candidate must pass to replace production."
    )

    @validator("data", pre=True)
    def _path_or_url(cls, value: Any) -> Any:
        return Path(value) if isinstance(value, str) and not remote.is_url(value) else value

    @validator("epochs", "trials", "full_retrain_every")
    def _zero_is_none(cls, value: int | None) -> int | None:
        return value or None

    @validator("model_name", always=True)
    def _default_model_name(cls, value: str | None, values: dict[str, Any]) -> str:
        return value or model_kind.default_model_name(values.get("project") is not None)


class WorkflowSettings(WorkflowFile):
    """What a run uses: the file's keys, merged with the command line, checked together, and the folder the
    run starts in (where the default store, lock and study live)."""

    project_dir: Path = Field(default_factory=Path.cwd)
    model_name: str = Field(default=None)  # type: ignore[assignment]  # None: derived from the project (validator)

    @root_validator(pre=True)
    def _finetune_is_on(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("finetune_only") is True and values.get("finetune") is False:  # as given, not defaults
            raise ValueError(
                "--finetune-only needs fine-tuning, which --no-finetune (or `finetune: false`) turns off; "
                "drop one of them"
            )
        return values

    @root_validator(skip_on_failure=True)
    def _together(cls, values: dict[str, Any]) -> dict[str, Any]:
        problems = _conflicts(values)
        if problems:
            raise ValueError("\n".join(problems))
        return values

    @property
    def policy(self) -> rules.PromotionPolicy:
        return self.promotion.policy()

    @property
    def primary_metric(self) -> str:
        return self.promotion.primary_metric

    @property
    def finetuning(self) -> bool:
        return self.finetune or self.finetune_only

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


def _conflicts(values: dict[str, Any]) -> list[str]:
    """Settings that are each fine but not together (checked once every field is)."""
    has = {k: values.get(k) is not None for k in ("data", "project", "test_stories")}
    problems = []
    if not has["data"] and not has["project"]:
        problems.append(
            "no training data; pass --data PATH or --project DIR (or set `data:` or `project:` in the "
            "workflow file)"
        )
    if has["data"] and has["project"]:
        problems.append(
            "--data and --project both given; a project's NLU data is its data/ folder, so pass one of them"
        )
    if has["test_stories"] and not has["project"]:
        problems.append(
            "--test-stories needs --project (test conversations run a whole assistant, which is trained from "
            "a project's domain and stories)"
        )
    if values.get("backend") == "kubernetes":
        config = Path(values.get("kubernetes_config") or KUBERNETES_CONFIG)
        if not config.is_file():
            problems.append(
                f"backend kubernetes needs a kubernetes config (--kubernetes-config, default "
                f"{KUBERNETES_CONFIG}); see docs/shared-server.md for what it holds"
            )
    return problems


def requirement(field: ModelField, off: tuple[str, ...] = ()) -> str:
    """What a field takes, in words: "a number between 0 and 1", "a whole number >= 1, or null"."""
    kind, info = field.type_, field.field_info
    if isinstance(kind, type) and issubclass(kind, Section):
        words = "a mapping of settings"
    elif field.name == "data":
        words = "a path or an http(s) URL"
    elif getattr(kind, "__origin__", None) is Literal:
        words = "one of " + ", ".join(kind.__args__)
    elif isinstance(kind, type) and issubclass(kind, str) and info.min_length:
        words = "a non-empty text"
    else:
        words = _kind_words(kind) + _range_words(info.ge, info.gt, info.le, info.lt)
    if field.allow_none:
        words += ", or null/off" if field.name in off else ", or null"
    return words


def _kind_words(kind: Any) -> str:
    for base, words in (
        (bool, "true or false"),
        (int, "a whole number"),
        (float, "a number"),
        (Path, "a path"),
    ):
        if isinstance(kind, type) and issubclass(kind, base):
            return words
    return "a text"


def _range_words(ge: Any, gt: Any, le: Any, lt: Any) -> str:
    low = f">= {ge}" if ge is not None else f"> {gt}" if gt is not None else None
    high = f"<= {le}" if le is not None else f"< {lt}" if lt is not None else None
    if ge is not None and le is not None:
        return f" between {ge} and {le}"
    if gt is not None and lt is not None:
        return f" strictly between {gt} and {lt}"
    return " " + " and ".join(x for x in (low, high) if x) if low or high else ""


def sections(model: type[BaseModel] = WorkflowFile) -> dict[str, type[Section]]:
    """The nested sections of a model by key, e.g. ``{"promotion": Promotion}``."""
    return {
        f.alias: f.type_
        for f in model.__fields__.values()
        if isinstance(f.type_, type) and issubclass(f.type_, Section)
    }


def option_targets() -> dict[str, tuple[str, ...]]:
    """Where a ``run`` option named after a field lands: ``epochs`` -> ``("epochs",)``, ``min_gain`` ->
    ``("promotion", "min_gain")``; field names are unique across the file (tested)."""
    keys = {f.alias for f in WorkflowFile.__fields__.values()} - set(sections())
    targets: dict[str, tuple[str, ...]] = {key: (key,) for key in keys}
    for section, model in sections().items():
        targets.update({f.alias: (section, f.alias) for f in model.__fields__.values()})
    return targets


def is_path_field(field: ModelField) -> bool:
    """A field whose relative values are read from the workflow file's folder."""
    return field.name == "data" or (isinstance(field.type_, type) and issubclass(field.type_, Path))


def json_schema() -> str:
    """The workflow file's JSON Schema (``nlu-mlflow schema``), for editors and the YAML language server."""
    return WorkflowFile.schema_json(indent=2)


def markdown_table(model: type[BaseModel] = WorkflowFile, prefix: str = "") -> str:
    """Every key of the file, its type, default and meaning, as the markdown table in docs/settings.md."""
    lines = ["| key | takes | default | meaning |", "| --- | --- | --- | --- |"] if not prefix else []
    nested = sections(model)
    for field in model.__fields__.values():
        if field.alias in nested:
            continue
        default = "derived" if field.name == "model_name" else _yaml(field.default)
        info = field.field_info.description or ""
        takes = requirement(field, getattr(model, "OFF", ()))
        lines.append(f"| `{prefix}{field.alias}` | {takes} | {default} | {info} |")
    for name, section in nested.items():
        lines.append(markdown_table(section, f"{prefix}{name}."))
    return "\n".join(lines)


def _yaml(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"
