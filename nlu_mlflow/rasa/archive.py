"""Rasa model archives (``.tar.gz``): check one before Rasa extracts it, and read what Rasa stored in its
``metadata.json`` (the model id, and whether it is a full assistant or an NLU-only model).

Rasa's extraction (tarsafe) checks member paths against the current directory, not the target folder,
so an archive from elsewhere (the registry, a download) is checked here first. Only ``metadata.json`` is
read (no extraction, no import of Rasa): the receiver calls this for every version it loads.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath

from nlu_mlflow.decide.model_kind import KIND_FULL, KIND_NLU

ARCHIVE_METADATA = "metadata.json"
# rasa.shared.data.TrainingType, as Rasa 3.6 writes its value into metadata.json's `training_type`
# (tests/rasa/test_archive.py pins them against Rasa's enum)
TRAINING_TYPE_NLU = 1  # rasa train nlu
TRAINING_TYPE_CORE = 2  # rasa train core
TRAINING_TYPE_BOTH = 3  # rasa train: NLU and dialogue
TRAINING_TYPE_END_TO_END = 4  # rasa train with end-to-end stories
KIND_OF_TRAINING_TYPE = {
    TRAINING_TYPE_NLU: KIND_NLU,
    TRAINING_TYPE_CORE: KIND_FULL,
    TRAINING_TYPE_BOTH: KIND_FULL,
    TRAINING_TYPE_END_TO_END: KIND_FULL,
}


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


def archive_metadata(archive: Path) -> dict:
    """The archive's ``metadata.json`` as written by Rasa; ``{}`` when it has none or cannot be read (not a
    Rasa 3 model: Rasa itself refuses to load it, with its own reason)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(ARCHIVE_METADATA)
            metadata = json.load(member) if member else {}
    except (KeyError, ValueError, tarfile.TarError, OSError, EOFError):  # no such member, not JSON, not a tar
        return {}
    return metadata if isinstance(metadata, dict) else {}


def archive_model_id(archive: Path) -> str | None:
    """The ``model_id`` Rasa stored in an archive (what ``/status`` reports once it is loaded)."""
    return archive_metadata(archive).get("model_id")


def archive_kind(archive: Path) -> str | None:
    """``KIND_FULL`` (NLU and dialogue) or ``KIND_NLU`` from the archive's ``training_type``; None when the
    archive does not say (no metadata, or a training type this Rasa does not write)."""
    return KIND_OF_TRAINING_TYPE.get(archive_metadata(archive).get("training_type"))


def archive_training_type(archive: Path) -> str | None:
    """What Rasa trained into an archive: ``"nlu"``, ``"core"``, ``"both"`` (a whole assistant) or
    ``"end_to_end"``; None when the archive does not say."""
    value = archive_metadata(archive).get("training_type")
    return {1: "nlu", 2: "core", 3: "both", 4: "end_to_end"}.get(value)
