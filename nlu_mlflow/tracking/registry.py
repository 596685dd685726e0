"""Every MLflow Model Registry call: register, read and move the ``production`` pointer, tag versions.

Promotion is race-safe by convergence: the alias ``production`` is the single source of truth
(an alias is unique per model in the registry's database), and the legacy stage is then reconciled
to it (``reconcile_stages``: a bounded step that ends on a read finding exactly one version in Production,
the alias holder). Every promoter's last action is such a read, so after concurrent promotions the
registry ends consistent, whichever promoter wrote last.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nlu_mlflow import constants as c
from nlu_mlflow.console import library_output
from nlu_mlflow.decide.redact import redact, redact_text
from nlu_mlflow.tracking.errors import Needs, TrackingError, access_error, translated

STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
ALIAS_RETRIES = 6
RECONCILE_ATTEMPTS = 10  # each: 2 reads, then only the transitions that read calls for


class RegistryError(TrackingError):
    """The registry refused or could not be reached; the run's artifacts are unaffected."""


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]
    stage: str
    created_ms: int

    @classmethod
    def of(cls, mv) -> Version:
        return cls(
            mv.name, str(mv.version), mv.run_id, dict(mv.tags or {}), mv.current_stage, mv.creation_timestamp
        )

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def client() -> MlflowClient:
    return MlflowClient()


@translated()
def register(model_uri: str, name: str, tags: dict[str, str]) -> Version:
    """Register ``model_uri`` as a new version of ``name`` carrying ``tags``."""
    try:
        with library_output():  # "Successfully registered model ...", "Created version ..."
            mv = mlflow.register_model(model_uri, name, tags=redact(tags))
    except MlflowException as exc:
        refused = access_error(exc, Needs.on_model("register a new version", name))
        raise refused or RegistryError(f"registering {model_uri} as '{name}' failed: {exc.message}") from None
    return Version.of(mv)


@translated()
def get_version(name: str, version: str) -> Version:
    try:
        return Version.of(client().get_model_version(name, str(version)))
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise  # a refused login or a server that is down: ``translated`` says which
        raise RegistryError(f"model '{name}' has no version {version}; see `nlu-mlflow status`.") from None


@translated()
def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered model this user may read (a basic-auth server refuses to read an
    alias of a model that does not exist yet, as it refuses one the user may not read)."""
    found = client().search_registered_models(filter_string=f"name = '{name}'", max_results=1)
    return any(m.name == name for m in found)


@translated()
def alias_holder(name: str, alias: str = c.ALIAS_PRODUCTION) -> Version | None:
    """The version holding ``alias``, or None (also when the model is not registered yet)."""
    try:
        return Version.of(client().get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        refused = access_error(exc, Needs.on_model(f"read alias '{alias}'", name, "READ"))
        raise refused or RegistryError(f"reading alias '{alias}' of '{name}' failed: {exc.message}") from None


@translated()
def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    mlflow_client = client()
    with translated(Needs.on_model(f"tag version {version}", name)):
        for key, value in tags.items():
            mlflow_client.set_model_version_tag(name, str(version), key, redact_text(str(value)))


def _set_alias(name: str, alias: str, version: str) -> None:
    """Set an alias, retrying the 400 a concurrent alias write can cause (MLflow does not retry it)."""
    for attempt in range(ALIAS_RETRIES):
        try:
            client().set_registered_model_alias(name, alias, str(version))
            return
        except MlflowException as exc:
            refused = access_error(exc, Needs.on_model(f"set alias '{alias}'", name))
            if refused is not None:
                raise refused from None  # a missing permission stays missing: no retry
            if attempt == ALIAS_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)


@translated()
def versions_in_stage(name: str, stage: str) -> list[str]:
    found = client().search_model_versions(f"name='{name}'")
    return sorted((str(v.version) for v in found if v.current_stage == stage), key=int)


def _transition(name: str, version: str, stage: str) -> None:
    with (
        translated(Needs.on_model(f"move version {version} to stage {stage}", name)),
        warnings.catch_warnings(),  # stages are deprecated; kept in step for clients that still read them
    ):
        warnings.simplefilter("ignore", FutureWarning)
        client().transition_model_version_stage(name, version, stage)


@dataclass(frozen=True)
class Reconciled:
    """What one reconciliation of the legacy stage did: the alias holder it aligned Production with, the
    versions it moved into Production and to Archived, and how many read-then-fix attempts it took."""

    holder: str | None
    promoted: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    attempts: int = 1


@translated()
def reconcile_stages(name: str) -> Reconciled:
    """Make the ``production`` alias holder the one and only version in stage Production (the legacy stage
    that users' UIs and stage-reading clients still show).

    One bounded step: at most ``RECONCILE_ATTEMPTS`` attempts, each one read of the alias and the stages and
    then a transition of only the versions that read found out of place (the holder into Production, any
    other Production version to Archived). It returns on a read that finds the registry consistent, so after
    concurrent promotions whoever reconciles last leaves it so; a registry that keeps changing under it
    raises ``RegistryError`` instead of looping.
    """
    promoted: list[str] = []
    archived: list[str] = []
    for attempt in range(1, RECONCILE_ATTEMPTS + 1):
        holder = alias_holder(name)
        in_production = versions_in_stage(name, STAGE_PRODUCTION)
        if holder is None or in_production == [holder.version]:
            found = holder.version if holder else None
            return Reconciled(found, tuple(promoted), tuple(archived), attempt)
        if holder.version not in in_production:
            _transition(name, holder.version, STAGE_PRODUCTION)
            promoted.append(holder.version)
        for version in in_production:
            if version != holder.version:
                _transition(name, version, STAGE_ARCHIVED)
                archived.append(version)
    raise RegistryError(
        f"stages of '{name}' did not settle in {RECONCILE_ATTEMPTS} attempts (other promotions kept moving "
        "the alias); rerun the command."
    )


@translated()
def move_production(name: str, version: str) -> Version | None:
    """Point ``production`` at ``version`` and ``previous-production`` at the former holder, then reconcile
    the legacy stage with the alias.

    Returns the former holder (None for the first promotion).
    """
    previous = alias_holder(name)
    if previous is None or previous.version != str(version):
        _set_alias(name, c.ALIAS_PRODUCTION, version)
        if previous is not None:
            _set_alias(name, c.ALIAS_PREVIOUS, previous.version)
    reconcile_stages(name)
    return previous
