"""The deploy step: make a running Rasa server serve a registered version, and confirm it does.

A version goes to ``<work_dir>/<model>-v<version>.tar.gz`` (downloaded from the registry, checked,
then renamed into place), is loaded with ``PUT /model`` and confirmed with ``GET /status``: the
server must report that file name and the ``model_id`` stored in the archive. The file name is
the record of what is live, so ``sync`` needs no state of its own: it compares ``/status`` with the
``production`` alias holder. Rasa reads the archive from ``work_dir`` by path, so the receiver and
the Rasa server must share that folder (same host, or the same volume).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.rasa.archive import archive_model_id, check_archive
from nlu_mlflow.rasa.server import RasaServer, RasaServerError
from nlu_mlflow.tracking import models, registry
from nlu_mlflow.tracking.errors import TrackingError
from nlu_mlflow.tracking.registry import Version

logger = logging.getLogger("nlu_mlflow")

KEEP_ARCHIVES = 3  # the live archive and two before it, for a manual `PUT /model` rollback


class DeployError(RuntimeError):
    """A version could not be made live; Rasa keeps serving what it served before."""

    def __init__(self, message: str, version: Version | None = None):
        super().__init__(message)
        self.version = version


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
        if rasa.status().model_file == target.name:
            return DeployResult(found, target.name, False, time.perf_counter() - started)
        fetch(found, target)
        load(rasa, target)
    except (RasaServerError, ValueError, TrackingError, OSError) as exc:
        raise DeployError(f"{found.name} version {found.version} not loaded: {_reason(exc)}", found) from None
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


def load(rasa: RasaServer, target: Path) -> None:
    """``PUT /model`` then ``confirm``; a file Rasa did not take is removed."""
    try:
        rasa.load_model(target)
        confirm(rasa, target)
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


def prune(work_dir: Path, live: Path) -> None:
    """Remove deployed archives beyond the ``KEEP_ARCHIVES`` newest (never the live one)."""
    archives = sorted(work_dir.glob("*-v*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[KEEP_ARCHIVES:]:
        if old != live:
            old.unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    return str(exc).rstrip(".")
