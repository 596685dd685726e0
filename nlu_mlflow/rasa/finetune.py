"""Fine-tune a trained Rasa archive on new data: the facts that decide whether Rasa can (judged by
``decide.finetune``), and what changed in the data since.

Rasa fine-tunes (``model_to_finetune``, ``finetuning_epoch_fraction``) only what its ``FinetuningValidator``
accepts, and says so only mid-training. That validator stores fingerprints in every archive it trains: the
NLU labels (intents, entities, entity roles and groups, action names) and, for a whole assistant, the domain
as the dialogue policies see it. ``training_view`` computes the same fingerprints of today's data through the
importer Rasa's training builds (``training.importer``), so a refusal is known before training, with its
reason; tests/rasa/test_finetune.py pins them against the archives Rasa writes and against Rasa's refusal.
Rasa's other refusal comes mid-training, when DIET or the ResponseSelector compares its sparse feature sizes
with the stored ones: ``feature_facts`` replays Rasa's fine-tune featurization of today's data (its own
training graph, fine-tune mode, up to the classifiers) to know those sizes first (docs/finetuning.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.console import library_output
from nlu_mlflow.decide import finetune as decide
from nlu_mlflow.rasa import training
from nlu_mlflow.rasa.archive import archive_metadata, archive_training_type
from nlu_mlflow.rasa.data import NluData, example_keys
from nlu_mlflow.rasa.pipelines import PipelineConfig, default_epochs
from nlu_mlflow.rasa.project import Project

FINGERPRINTS_FILE = "fingerprints-for-validation.json"  # FinetuningValidator.FILENAME
FINGERPRINT_KEYS = {"fingerprint-nlu": "nlu", "fingerprint-core": "core"}  # FinetuningValidator's keys
DIET_PREFIX = "DIETClassifier."  # DIET's files in an archive: its label mapping and entity tag specs
SIZES_FILE = "{}.sparse_feature_sizes.json"  # DIETClassifier.persist (ResponseSelector: its own class name)
PATTERNS_FILE = "patterns.json"  # RegexFeaturizer._persist


def config_digest(config: PipelineConfig) -> str:
    """Digest of a pipeline's components and options (16 hex chars of SHA-256), epochs included."""
    blob = json.dumps(config.config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def epoch_components(config: PipelineConfig) -> list[str]:
    """The components and policies that train in epochs: those Rasa's fine-tuning continues from their weights
    (and whose epochs ``finetuning_epoch_fraction`` scales); the others train from scratch in a fine-tune."""
    return [s["name"] for s in config.pipeline + config.policies if default_epochs(s["name"]) is not None]


def stored_fingerprints(archive: Path) -> dict[str, str]:
    """The fingerprints Rasa's FinetuningValidator stored in the archive (``nlu``, and ``core`` for a whole
    assistant); empty when it has none."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(FINGERPRINTS_FILE):
                stored = json.load(tar.extractfile(member))
                return {ours: stored[key] for key, ours in FINGERPRINT_KEYS.items() if key in stored}
    return {}


def archive_labels(archive: Path) -> dict[str, frozenset[str]] | None:
    """The intents and entity types the archive's DIET knows, from the label files it stores (only the kinds
    it stores); None when the archive has no DIET."""
    labels: dict[str, frozenset[str]] = {}
    found = False
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and name.startswith(DIET_PREFIX)):
                continue
            if name.endswith(".index_label_id_mapping.json"):
                found = True
                intents = set(json.load(tar.extractfile(member)).values())
                labels.update({"intents": frozenset(intents)} if intents else {})
            elif name.endswith(".entity_tag_specs.json"):
                found = True
                specs = [s for s in json.load(tar.extractfile(member)) if s.get("tag_name") == "entity"]
                tags = {t for s in specs for t in s.get("ids_to_tags", {}).values() if t != "O"}
                labels.update({"entities": frozenset(t.split("-", 1)[-1] for t in tags)} if specs else {})
    return labels if found else None


@dataclass(frozen=True)
class TrainingView:
    """Today's training data as Rasa's FinetuningValidator sees it."""

    run_type: str  # "nlu" or "both" (a whole assistant)
    fingerprints: dict[str, str]  # nlu, and core for a whole assistant
    labels: dict[str, frozenset[str]]  # intents, entities


def training_view(config: PipelineConfig, train_yaml: Path, project: Project | None = None) -> TrainingView:
    """The fingerprints and labels of what ``training.train`` would train ``config`` on."""
    from rasa.graph_components.providers.domain_for_core_training_provider import (
        DomainForCoreTrainingProvider,
    )

    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-finetune-") as tmp:
        importer, full = training.importer(config, train_yaml, Path(tmp), project)
        nlu = importer.get_nlu_data()
        fingerprints = {"nlu": nlu.label_fingerprint()}
        if full:
            pruned = DomainForCoreTrainingProvider.create_pruned_version(importer.get_domain())
            fingerprints["core"] = pruned.fingerprint()
        labels = {"intents": frozenset(nlu.intents), "entities": frozenset(nlu.entities)}
    return TrainingView("both" if full else "nlu", fingerprints, labels)


def archive_facts(archive: Path, view: TrainingView) -> decide.ArchiveFacts:
    import rasa

    return decide.ArchiveFacts(
        rasa_version=archive_metadata(archive).get("rasa_open_source_version"),
        this_rasa=rasa.__version__,
        archive_type=archive_training_type(archive),
        run_type=view.run_type,
        stored=stored_fingerprints(archive),
        today=view.fingerprints,
        known=archive_labels(archive),
        labels=view.labels,
    )


def archive_problem(archive: Path, view: TrainingView, version: str) -> str | None:
    """Why Rasa would refuse to fine-tune ``archive`` (production ``version``) on today's data (None: it
    fine-tunes)."""
    return decide.archive_problem(archive_facts(archive, view), version)


def finetune_problem(
    archive: Path,
    config: PipelineConfig,
    base_digest: str | None,
    train_yaml: Path,
    project: Project | None = None,
    version: str = "production",
) -> str | None:
    """Why ``archive`` (trained from a config whose ``config_digest`` is ``base_digest``) cannot be fine-tuned
    with ``config`` on ``train_yaml`` (the config, the labels, the feature sizes); None when it can."""
    base = decide.Base(version, config.name, base_digest)
    digest, components = config_digest(config), epoch_components(config)
    problem = decide.config_problem(config.name, digest, components, base, "")
    problem = problem or archive_problem(archive, training_view(config, train_yaml, project), version)
    return problem or feature_problem(archive, config, train_yaml, project, version)


class FeaturizingRefused(Exception):
    """Rasa's fine-tune featurization of today's data failed (e.g. a shared vocabulary that would grow)."""


def feature_problem(
    archive: Path,
    config: PipelineConfig,
    train_yaml: Path,
    project: Project | None = None,
    version: str = "production",
) -> str | None:
    """Why Rasa would stop fine-tuning ``archive`` on ``train_yaml`` when its classifiers compare feature
    sizes (None: it absorbs today's features); checked after the labels (``archive_problem``)."""
    try:
        classifiers, patterns = feature_facts(archive, config, train_yaml, project)
    except FeaturizingRefused as refused:
        return (
            f"Rasa cannot featurize today's data for a fine-tune of production version {version}: {refused}"
        )
    return decide.feature_problem(classifiers, patterns, version)


def feature_facts(
    archive: Path, config: PipelineConfig, train_yaml: Path, project: Project | None = None
) -> tuple[list[decide.SparseSizes], list[decide.PatternCount]]:
    """Today's data featurized as Rasa's fine-tune does it (the archive's featurizers loaded in fine-tune
    mode, through the nodes of Rasa's own training graph up to the classifiers), the sizes each classifier
    would compare with those it stored, and the RegexFeaturizers' pattern counts before and after."""
    from rasa.engine.constants import PLACEHOLDER_IMPORTER
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-features-") as tmp:
        importer, full = training.importer(config, train_yaml, Path(tmp) / "config", project)
        schema = _finetune_schema(importer, full)
        (Path(tmp) / "model").mkdir()  # Rasa moves the components into it: it must exist
        storage, _ = LocalModelStorage.from_model_archive(Path(tmp) / "model", archive)
        regexes = {n: _read(storage, n, PATTERNS_FILE) for n, x in schema.nodes.items() if _is_regex(x)}
        classifiers = {n: x for n, x in schema.nodes.items() if _is_classifier(x.uses)}
        targets = sorted({x.needs["training_data"] for x in classifiers.values()})
        runner = DaskGraphRunner(schema, storage, ExecutionContext(schema, is_finetuning=True))
        try:
            with library_output():
                outputs = runner.run({PLACEHOLDER_IMPORTER: importer}, targets) if targets else {}
        except Exception as error:  # Rasa's graph wraps the component's exception
            raise FeaturizingRefused(_root_message(error)) from error
        patterns = [
            decide.PatternCount(_short(n), len(before or []), len(_read(storage, n, PATTERNS_FILE) or []))
            for n, before in regexes.items()
        ]
        sizes = [
            _sparse_sizes(n, x, outputs[x.needs["training_data"]], storage, schema)
            for n, x in classifiers.items()
        ]
    return sizes, patterns


def _finetune_schema(importer, full: bool):
    """The training graph Rasa builds for a fine-tune of this config (``model_training._train_graph``)."""
    from rasa.engine.recipes.recipe import Recipe
    from rasa.shared.data import TrainingType

    kind = TrainingType.BOTH if full else TrainingType.NLU
    config = importer.get_config()
    recipe = Recipe.recipe_for_name(config.get("recipe"))
    config, _, _ = recipe.auto_configure(importer.get_config_file_for_auto_config(), config, kind)
    return recipe.graph_config_for_recipe(config, {}, training_type=kind, is_finetuning=True).train_schema


def _is_classifier(cls: type) -> bool:
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    return issubclass(cls, DIETClassifier)  # the ResponseSelector is one too


def _is_regex(node) -> bool:
    from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer

    return issubclass(node.uses, RegexFeaturizer) and node.fn == "train"


def _read(storage, node: str, name: str):
    """A JSON file a component stored under its node's resource; None when it has none."""
    from rasa.engine.storage.resource import Resource

    try:
        with storage.read_from(Resource(node)) as folder:
            path = Path(folder) / name
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:  # no resource of that name
        return None


def _sparse_sizes(node: str, schema_node, training_data, storage, schema) -> decide.SparseSizes:
    """The sizes the classifier of ``node`` stored, and those it computes from ``training_data`` (its own
    ``preprocess_train_data``, as in a fine-tune, without building its TensorFlow model)."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.resource import Resource

    cls = schema_node.uses
    config = {**cls.get_default_config(), **schema_node.config}
    context = ExecutionContext(schema, node_name=node)
    component = cls.create(config, storage, Resource(node), context)
    today = component.preprocess_train_data(training_data).get_sparse_feature_sizes()
    stored = _read(storage, node, SIZES_FILE.format(cls.__name__))
    return decide.SparseSizes(cls.__name__, stored, today, _featurizers(training_data, today, config))


def _featurizers(training_data, today: decide.Sizes, config: dict) -> dict[str, dict[str, list[str]]]:
    """Which featurizer gave each size today (the first example's sparse features, in Rasa's order)."""
    chosen = config.get("featurizers") or []
    names: dict[str, dict[str, list[str]]] = {}
    for attribute, kinds in today.items():
        message = next((m for m in training_data.nlu_examples if m.features_present(attribute, chosen)), None)
        features = [] if message is None else message.features
        names[attribute] = {
            kind: [
                _short(f.origin)
                for f in features
                if f.attribute == attribute and f.is_sparse() and f.type == kind
                and (not chosen or f.origin in chosen)
            ]
            for kind in kinds
        }  # fmt: skip
    return names


def _short(node: str | list) -> str:
    """``run_RegexFeaturizer1`` -> ``RegexFeaturizer``."""
    name = node if isinstance(node, str) else ",".join(node)
    return re.sub(r"\d+$", "", re.sub(r"^(run|train)_", "", name))


def _root_message(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error).split(". ")[0].strip().rstrip(".")


def data_delta(base: NluData, new: NluData) -> decide.Delta:
    """Examples added and removed from ``base`` to ``new`` (by content digest: text, intent, entities; a
    repeated example counts once per repeat)."""
    old, now = set(example_keys(base.examples)), set(example_keys(new.examples))
    return decide.Delta(added=len(now - old), removed=len(old - now), base_examples=len(old))
