"""Rasa model archives (``.tar.gz``): check one before Rasa extracts it, and read the id Rasa stored in it.

Rasa's extraction (tarsafe) checks member paths against the current directory, not the target folder,
so an archive from elsewhere (the registry, a download) is checked here first.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath

ARCHIVE_METADATA = "metadata.json"


def check_archive(archive: Path) -> None:
    """Refuse an archive whose members could land outside the folder Rasa extracts it to, or that
    holds anything but plain files and folders (links, devices, fifos), or that is not a tar.gz."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(
            f"{archive}: not a readable .tar.gz ({type(exc).__name__}); re-log the model."
        ) from None
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise ValueError(
                f"{archive}: member '{member.name}' is a link or device or leaves the archive's folder; "
                "this is not a model archive Rasa wrote, retrain or re-log the model."
            )


def archive_model_id(archive: Path) -> str | None:
    """The ``model_id`` Rasa stored in an archive (what ``/status`` reports once it is loaded)."""
    with tarfile.open(archive, "r:gz") as tar:
        try:
            member = tar.extractfile(ARCHIVE_METADATA)
        except KeyError:
            return None
        return json.load(member).get("model_id") if member else None


def archive_training_type(archive: Path) -> str | None:
    """What Rasa trained into an archive: ``"nlu"``, ``"core"`` or ``"both"`` (a whole assistant)."""
    with tarfile.open(archive, "r:gz") as tar:
        try:
            member = tar.extractfile(ARCHIVE_METADATA)
        except KeyError:
            return None
        value = json.load(member).get("training_type") if member else None
    return {1: "nlu", 2: "core", 3: "both", 4: "end_to_end"}.get(value, str(value).lower() if value else None)
