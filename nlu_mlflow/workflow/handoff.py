"""The exact inputs of one workflow run, as files: what every candidate trains and is scored on.

``write`` puts the training and test split (Rasa's own YAML writer), the critical suite, each candidate's
effective config and, for a project, its domain, dialogue files and test conversations into one folder
with a ``manifest.json``; the workflow logs that folder as the parent run's ``inputs/`` artifacts. ``read``
builds the candidates' shared inputs from such a folder. The workflow reads back what it wrote too, so a
candidate trained in this process (backend ``inline``), in a subprocess (``local``) or in a Kubernetes Job
trains on the same bytes and reports the same digests.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import yaml

from nlu_mlflow.decide.critical_suite import CriticalSuite
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa.data import NluData, load_nlu
from nlu_mlflow.rasa.project import DATA_DIR, TESTS_DIR, load_project
from nlu_mlflow.workflow.candidates import CandidateInputs
from nlu_mlflow.workflow.inputs import Inputs, parse_suite
from nlu_mlflow.workflow.schema import Promotion
from nlu_mlflow.workflow.settings import WorkflowSettings

MANIFEST = "manifest.json"
LIVE = "live.yml"  # the training data's annotated live messages (`inbox pull` files), logged as their dataset
LIVE_TEST = "live_test.yml"  # annotated live messages kept apart as test data (--live-test-data)
ARTIFACT_DIR = "inputs"  # on the parent run


def write(inputs: Inputs, settings: WorkflowSettings, folder: Path, env_tags: dict[str, str]) -> Path:
    """Write ``inputs`` into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs.train.to_yaml(folder / "train.yml")
    inputs.test.to_yaml(folder / "test.yml")
    if inputs.live is not None:
        inputs.live.to_yaml(folder / LIVE)
    if inputs.live_test is not None:
        inputs.live_test.to_yaml(folder / LIVE_TEST)
    (folder / "configs").mkdir()
    manifest = {
        "train": inputs.train.source,
        "test": inputs.test.source,
        "live": inputs.live.source if inputs.live is not None else None,
        "live_test": inputs.live_test.source if inputs.live_test is not None else None,
        "critical": _write_suite(inputs.suite, folder / "critical.yml"),
        **_write_project(inputs.project, folder / "project"),
        "configs": {c.name: _write_config(c, folder / "configs") for c in inputs.configs},
        "seed": settings.seed,
        "epochs": settings.epochs,
        "primary_metric": settings.primary_metric,
        "env_tags": env_tags,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def _write_suite(suite: CriticalSuite | None, path: Path) -> str | None:
    if suite is None:
        return None
    document = {"version": 1, "utterances": [_utterance(u) for u in suite.utterances]}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return suite.path


def _utterance(u) -> dict:
    entry = {"text": u.text, "intent": u.intent}
    if u.entities:
        entry["entities"] = [{"entity": e, "value": v} for e, v in u.entities]
    if u.min_confidence is not None:
        entry["min_confidence"] = u.min_confidence
    return entry


def _write_config(config: pipelines.PipelineConfig, folder: Path) -> str:
    (folder / f"{config.name}.yml").write_text(config.text(), encoding="utf-8")  # with its `search:` section
    return str(config.path)


def _write_project(project, target: Path) -> dict:
    """The project as Rasa reads it: its domain, its dialogue files (without their NLU part: the split's
    training data is ``train.yml``) and its test conversations; no config (each candidate has its own)."""
    if project is None:
        return {"project": None, "test_stories": {}}
    domain = target / project.domain_path.name
    if project.domain_path.is_dir():
        shutil.copytree(project.domain_path, domain)
    else:
        target.mkdir(parents=True)
        shutil.copyfile(project.domain_path, domain)
    for staged in project.stage_training_files(target / "_staging"):
        (target / DATA_DIR).mkdir(exist_ok=True)
        staged.rename(target / DATA_DIR / staged.name)
    shutil.rmtree(target / "_staging", ignore_errors=True)
    tests = project.stage_test_stories(target / "_staging")
    if tests is not None:
        shutil.move(str(tests.folder), target / TESTS_DIR)
    shutil.rmtree(target / "_staging", ignore_errors=True)
    return {"project": str(project.root), "test_stories": tests.sources if tests else {}}


def read(folder: Path, work: Path, names: list[str] | None = None) -> CandidateInputs:
    """The shared inputs of the candidates ``names`` (default: all) from a folder ``write`` made."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    train = _relabel(load_nlu(folder / "train.yml"), manifest["train"])
    test = _relabel(load_nlu(folder / "test.yml"), manifest["test"])
    suite = None
    if manifest["critical"] is not None:
        text = (folder / "critical.yml").read_text(encoding="utf-8")
        suite = dataclasses.replace(parse_suite(text, manifest["critical"], None), path=manifest["critical"])
    project = None
    if manifest["project"] is not None:
        project = dataclasses.replace(load_project(folder / "project"), root=Path(manifest["project"]))
    configs = [_read_config(folder, name, source) for name, source in manifest["configs"].items()]
    if names is not None:
        configs = [c for c in configs if c.name in names]
    live, live_test = (
        _relabel(load_nlu(folder / name), manifest[key]) if manifest.get(key) else None
        for key, name in (("live", LIVE), ("live_test", LIVE_TEST))
    )
    inputs = Inputs(train, test, configs, suite, [], project, live=live, live_test=live_test)
    settings = WorkflowSettings(
        data=manifest["train"],
        seed=manifest["seed"],
        epochs=manifest["epochs"],
        promotion=Promotion(primary_metric=manifest["primary_metric"]),
    )
    work.mkdir(parents=True, exist_ok=True)
    tests = project.stage_test_stories(work / "staged") if project and inputs.has_conversations else None
    if tests is not None:  # name the project's own files in the conversations table
        originals = manifest["test_stories"]
        tests = dataclasses.replace(
            tests, sources={k: originals.get(Path(v).name, v) for k, v in tests.sources.items()}
        )
    return CandidateInputs(inputs, settings, folder / "train.yml", tests, manifest["env_tags"])


def _relabel(data: NluData, source: str) -> NluData:
    return dataclasses.replace(data, source=source)


def _read_config(folder: Path, name: str, source: str) -> pipelines.PipelineConfig:
    text = (folder / "configs" / f"{name}.yml").read_text(encoding="utf-8")
    return pipelines.parse(text, Path(source), name=name)  # already capped and seeded
