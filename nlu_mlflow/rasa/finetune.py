"""Fine-tune a trained Rasa NLU archive on new data: whether Rasa can, and why not when it cannot.

Rasa fine-tunes (``model_to_finetune``, ``finetuning_epoch_fraction``) only a model trained from the same
pipeline, by the same Rasa version, whose labels cover the new data: its ``FinetuningValidator`` refuses
anything else, but only after the importer has read the data and mid-graph. ``finetune_problem`` says the
same before training, in one sentence the workflow can log and tag.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from nlu_mlflow.rasa.archive import archive_metadata
from nlu_mlflow.rasa.data import NluData, examples_digest
from nlu_mlflow.rasa.pipelines import PipelineConfig


def config_digest(config: PipelineConfig) -> str:
    """Digest of a pipeline's components and options (16 hex chars of SHA-256), epochs included."""
    blob = json.dumps(config.config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def archive_labels(archive: Path) -> dict[str, set[str]] | None:
    """The intents and entity types the archive's trained classifiers know, from the label files Rasa's
    DIET and ResponseSelector store; None when the archive has none (no classifier Rasa fine-tunes)."""
    labels: dict[str, set[str]] = {"intents": set(), "entities": set()}
    found = False
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if name.endswith(".index_label_id_mapping.json"):
                labels["intents"] |= set(json.load(tar.extractfile(member)).values())
                found = True
            elif name.endswith(".entity_tag_specs.json"):
                for spec in json.load(tar.extractfile(member)):
                    if spec.get("tag_name") == "entity":
                        tags = spec.get("ids_to_tags", {}).values()
                        labels["entities"] |= {t.split("-", 1)[-1] for t in tags if t != "O"}
                found = True
    return labels if found else None


def _data_labels(data: NluData) -> dict[str, set[str]]:
    td = data.training_data
    return {
        "intents": set(td.intents),
        "entities": set(td.entities),
    }


def finetune_problem(
    archive: Path, config: PipelineConfig, base_digest: str | None, data: NluData
) -> str | None:
    """Why ``archive`` cannot be fine-tuned with ``config`` on ``data`` (None when it can).

    ``base_digest`` is ``config_digest`` of the config the archive was trained from (None: unknown)."""
    import rasa

    metadata = archive_metadata(archive)
    version = metadata.get("rasa_open_source_version")
    if version != rasa.__version__:
        return f"the archive was trained by Rasa {version}, this is Rasa {rasa.__version__}"
    if base_digest != config_digest(config):
        return f"config changed: {config.name} digest {config_digest(config)} != base {base_digest}"
    old, new = archive_labels(archive), _data_labels(data)
    if old is None:
        return None
    for kind in ("intents", "entities"):
        added = sorted(new[kind] - old[kind])
        if added:
            return f"new {kind} the model cannot take: {', '.join(added[:5])}"
    return None


def _example_digests(data: NluData) -> set[str]:
    return {examples_digest([m]) for m in data.examples}  # one example's content digest each


def data_delta(base: NluData, new: NluData) -> dict[str, int]:
    """Examples added and removed from ``base`` to ``new`` (compared by content digest)."""
    old, now = _example_digests(base), _example_digests(new)
    return {"added": len(now - old), "removed": len(old - now)}
