"""The deploy step: make a running Rasa server serve a registered version, and confirm it does.

A version goes to ``<work_dir>/<model>-v<version>.tar.gz`` (downloaded from the registry, checked,
then renamed into place), is loaded with ``PUT /model`` and confirmed with ``GET /status``: the
server must report that file name and the ``model_id`` stored in the archive. The file name is
the record of what is live, so ``sync`` needs no state of its own: it compares ``/status`` with the
``production`` alias holder. Rasa reads the archive from ``work_dir`` by path, so the receiver and
the Rasa server must share that folder (same host, or the same volume).

Before loading, the version's kind (full assistant or NLU-only, from the archive's ``metadata.json``) is
weighed against what Rasa serves (``decide.model_kind.load_refusal``): an NLU-only model never replaces
a full assistant. Archives are removed only when Rasa cannot be reading them: a file Rasa refused, or,
after a new one is confirmed live, the oldest beyond ``KEEP_ARCHIVES`` (never the live one nor one that
is being loaded, also by another process: ``sync-rasa`` beside the receiver).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.decide.model_kind import KIND_FULL, KIND_NLU, load_refusal
from nlu_mlflow.rasa.archive import archive_kind, archive_model_id, check_archive
from nlu_mlflow.rasa.server import RasaServer, RasaServerError, RasaStatus, RasaUnreachable
from nlu_mlflow.tracking import models, registry
from nlu_mlflow.tracking.errors import TrackingError
from nlu_mlflow.tracking.registry import Version

logger = logging.getLogger("nlu_mlflow")

KEEP_ARCHIVES = 3  # the live archive and two before it, for a manual `PUT /model` rollback
LOADING_SUFFIX = ".loading"  # `.<archive>.loading` beside an archive while it is being loaded


class DeployError(RuntimeError):
    """A version could not be made live; Rasa keeps serving what it served before.

    ``retryable`` is False where trying again cannot help (a refused kind, an archive that fails its check).
    """

    def __init__(self, message: str, version: Version | None = None, retryable: bool = True):
        super().__init__(message)
        self.version = version
        self.retryable = retryable


class DeployRefused(DeployError):
    """Not loaded on purpose (e.g. an NLU-only model for a server running a full assistant)."""

    def __init__(self, message: str, version: Version | None = None):
        super().__init__(message, version, retryable=False)


@dataclass(frozen=True)
class DeployResult:
    version: Version
    model_file: str
    changed: bool  # False when the server already ran this version
    seconds: float


def deployed_file_name(name: str, version: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-v{version}.tar.gz"


def deploy_version(name: str, version: str, rasa: RasaServer, work_dir: Path) -> DeployResult:
    """Make ``rasa`` serve version ``version`` of ``name`` (a no-op when it already does)."""
    started = time.perf_counter()
    try:
        found = registry.get_version(name, version)
    except TrackingError as exc:
        raise DeployError(str(exc)) from None
    target = Path(work_dir) / deployed_file_name(name, found.version)
    try:
        status = rasa.status()
        if status.model_file == target.name:
            return DeployResult(found, target.name, False, time.perf_counter() - started)
        with loading(target):
            fetch(found, target)
            check_kind(found, target, rasa, status)
            load(rasa, target)
    except ValueError as exc:  # the archive failed its check: the same bytes fail again
        raise DeployError(_not_loaded(found, exc), found, retryable=False) from None
    except (RasaServerError, TrackingError, OSError) as exc:
        raise DeployError(_not_loaded(found, exc), found) from None
    prune(Path(work_dir), target)
    return DeployResult(found, target.name, True, time.perf_counter() - started)


def sync(name: str, rasa: RasaServer, work_dir: Path) -> DeployResult | None:
    """Make ``rasa`` serve the ``production`` alias holder; None when there is no production version."""
    try:
        holder = registry.alias_holder(name)
    except TrackingError as exc:
        raise DeployError(str(exc)) from None
    if holder is None:
        logger.info("%s has no production version; nothing to load", name)
        return None
    return deploy_version(name, holder.version, rasa, work_dir)


def fetch(version: Version, target: Path) -> None:
    """Download the version's Rasa archive, check its members, and move it to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = models.archive_path(version.uri, Path(tmp))
        try:
            check_archive(archive)
        except ValueError as exc:  # name the archive, not the temporary folder it was downloaded to
            raise ValueError(str(exc).replace(str(archive), f"archive {archive.name}")) from None
        os.replace(archive, target)


def check_kind(version: Version, target: Path, rasa: RasaServer, status: RasaStatus) -> None:
    """Raise ``DeployRefused`` (and drop the download) when ``target`` must not replace what Rasa serves."""
    refusal = load_refusal(archive_kind(target), served_kind(rasa, target.parent, status))
    if refusal is not None:
        target.unlink(missing_ok=True)
        raise DeployRefused(f"{version.name} version {version.version} not loaded: {refusal}", version)


def served_kind(rasa: RasaServer, work_dir: Path, status: RasaStatus) -> str | None:
    """The kind of model Rasa serves: read from its archive when ``/status`` names one in ``work_dir`` with
    the same model id, else asked from the server; None when it serves no model."""
    if not status.model_file:
        return None
    local = Path(work_dir) / Path(status.model_file).name
    if local.is_file() and archive_model_id(local) == status.model_id:
        kind = archive_kind(local)
        if kind is not None:
            return kind
    return KIND_FULL if rasa.has_dialogue() else KIND_NLU


def load(rasa: RasaServer, target: Path) -> None:
    """``PUT /model`` then ``confirm``; a file Rasa answered it did not take is removed. Without an answer
    (a timeout) Rasa may still be reading the file: it stays, and ``prune`` removes it in its time."""
    try:
        rasa.load_model(target)
        confirm(rasa, target)
    except RasaUnreachable:
        raise
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def confirm(rasa: RasaServer, target: Path) -> None:
    """Raise unless ``/status`` reports ``target`` (file name and the archive's model id) as loaded."""
    status = rasa.status()
    expected_id = archive_model_id(target)
    if status.model_file != target.name or (expected_id and status.model_id != expected_id):
        raise RasaServerError(
            f"Rasa server {rasa.url} reports '{status.model_file}' after loading '{target.name}'"
        )


def loading_marker(archive: Path) -> Path:
    return archive.with_name(f".{archive.name}{LOADING_SUFFIX}")


@contextmanager
def loading(target: Path) -> Iterator[None]:
    """Mark ``target`` as being loaded while the block runs: ``prune`` (of any process) leaves it alone."""
    marker = loading_marker(target)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def prune(work_dir: Path, live: Path) -> None:
    """Remove deployed archives beyond the ``KEEP_ARCHIVES`` newest; call it only once ``live`` is confirmed.
    Never removes the live archive nor one that is being loaded."""
    archives = sorted(_archives(work_dir), reverse=True)  # newest first
    for _, old in archives[KEEP_ARCHIVES:]:
        if old != live and not loading_marker(old).exists():
            old.unlink(missing_ok=True)


def _archives(work_dir: Path) -> list[tuple[float, Path]]:
    """``(mtime, path)`` of the deployed archives (the download time: ``fetch`` renames a fresh file)."""
    found = []
    for path in work_dir.glob("*-v*.tar.gz"):
        try:
            found.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # removed meanwhile by another process
            continue
    return found


def _not_loaded(version: Version, exc: Exception) -> str:
    return f"{version.name} version {version.version} not loaded: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    return str(exc).rstrip(".")
