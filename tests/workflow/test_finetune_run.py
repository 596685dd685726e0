"""Fine-tuning from production in the workflow, against a real SQLite store: three nights on the pizza data
with DIET (2 epochs; a fine-tune trains ceil(2 x 0.2) = 1), run once for the module.

1. ``finetune: true`` with no production yet: DIET trains from scratch and the run says why.
2. Examples added, ``--finetune-only`` (command line): only ``diet@finetuned`` trains and is compared with
   production; it records its base version, epoch fraction and data delta, and its metrics equal
   ``rasa test nlu`` on its archive.
3. Its version is production (forced, so the night does not depend on which model scored higher), and
   ``--finetune-only --full-retrain-every 2`` forces a full retrain from scratch, with its reason.
Then, without training, the plan of a plain ``--finetune`` night: ``diet`` and ``diet@finetuned`` both.
"""

from __future__ import annotations

import json
import random
import shutil

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import finetune, pipelines
from nlu_mlflow.rasa.data import NluData, load_nlu
from nlu_mlflow.tracking import models, registry
from nlu_mlflow.workflow import finetuning, manual, settings
from nlu_mlflow.workflow import run as workflow
from tests.helpers import CONFIGS, PIZZA
from tests.helpers.cli import invoke, run_args
from tests.helpers.compare import rasa_test_nlu

pytestmark = pytest.mark.slow

MODEL = "finetune-nlu"
EXPERIMENT = "finetune"
EPOCHS = 2


@pytest.fixture(scope="module")
def nights(tmp_path_factory, pizza_train):
    home = tmp_path_factory.mktemp("finetune-nights")
    uri = f"sqlite:///{home / 'mlruns.db'}"
    mlflow.MlflowClient(uri).create_experiment(EXPERIMENT, artifact_location=(home / "artifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    configs = home / "configs"
    configs.mkdir()
    shutil.copy(CONFIGS / "diet.yml", configs / "diet.yml")
    base = _without_some(pizza_train, home / "base.yml")
    values = {"data": base, "test_data": PIZZA / "test.yml", "configs": configs, "epochs": EPOCHS}
    values |= {"tracking_uri": uri, "experiment": EXPERIMENT, "model_name": MODEL, "project_dir": home}

    def cli_night(name, *extra):
        summary, log = home / f"{name}.json", home / f"{name}.log"
        args = run_args(home, uri, PIZZA / "train.yml", PIZZA / "test.yml", configs, EPOCHS, *extra)
        args += [
            "--experiment",
            EXPERIMENT,
            "--model-name",
            MODEL,
            "--summary-json",
            summary,
            "--log-file",
            log,
        ]
        result = invoke(args)
        assert result.exit_code == 0, result.output
        return json.loads(summary.read_text()), log.read_text()

    steps = {"first": workflow.run(settings.build({**values, "finetune": True}))}
    steps["fast"] = cli_night("fast", "--finetune-only")
    manual.promote(MODEL, steps["fast"][0]["candidate"]["version"], settings.read_policy(None), force=True)
    steps["full"] = cli_night("full", "--finetune-only", "--full-retrain-every", "2")
    return steps, mlflow.MlflowClient(uri), home, base


def _without_some(data: NluData, path):
    """The training data less every 8th example (seeded), every intent and entity type kept: yesterday's."""
    examples = list(data.training_data.training_examples)
    dropped = set(random.Random(42).sample(range(len(examples)), len(examples) // 8))
    kept = [m for i, m in enumerate(examples) if i not in dropped]
    yesterday = NluData(type(data.training_data)(kept), "base")
    assert yesterday.training_data.intents == data.training_data.intents
    assert yesterday.training_data.entities == data.training_data.entities
    return yesterday.to_yaml(path)


def children(client, run_id):
    parent = client.get_run(run_id)
    found = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    return {r.info.run_name: r for r in found}


def test_without_production_every_config_trains_from_scratch_and_says_why(nights):
    steps, client, _, _ = nights
    result = steps["first"]
    parent = client.get_run(result.run_id)
    assert parent.data.tags[c.TAG_FINETUNE_PREFIX + "diet"] == (
        f"trained from scratch: no production version of '{MODEL}' to fine-tune from"
    )
    runs = children(client, result.run_id)
    assert list(runs) == ["diet"]
    assert runs["diet"].data.tags[c.TAG_TRAINING] == c.TRAINING_SCRATCH
    assert [a.path for a in client.list_artifacts(runs["diet"].info.run_id, c.ARTIFACT_TRAINING_DATA)] == [
        f"{c.ARTIFACT_TRAINING_DATA}/train.yml"
    ]
    assert registry.get_version(MODEL, "1").tags[c.TAG_TRAINING] == c.TRAINING_SCRATCH


def test_finetune_only_trains_only_the_finetuned_candidate_which_records_its_base(nights, pizza_train):
    steps, client, _, base_yaml = nights
    summary, log = steps["fast"]
    runs = children(client, summary["run_id"])
    assert list(runs) == ["diet@finetuned"]
    tuned = runs["diet@finetuned"]
    delta = finetune.data_delta(load_nlu(base_yaml), pizza_train)
    assert delta.added == len(pizza_train.examples) // 8 and delta.removed == 0
    lineage = {
        c.TAG_TRAINING: c.TRAINING_FINETUNED,
        c.TAG_FINETUNED_FROM: "1",
        c.TAG_FINETUNED_FROM_RUN: registry.get_version(MODEL, "1").run_id,
        c.TAG_EPOCH_FRACTION: "0.2",
        c.TAG_FINETUNE_DEPTH: "1",
        c.TAG_DATA_ADDED: str(delta.added),
        c.TAG_DATA_REMOVED: "0",
        c.TAG_BASE_EXAMPLES: str(delta.base_examples),
    }
    assert {k: tuned.data.tags.get(k) for k in lineage} == lineage
    version = registry.get_version(MODEL, summary["candidate"]["version"])
    assert {k: version.tags.get(k) for k in lineage} == lineage
    assert version.tags[c.TAG_CONFIG] == "diet@finetuned"
    digest = finetune.config_digest(pipelines.load(CONFIGS / "diet.yml", epochs=EPOCHS, seed=42))
    assert tuned.data.params["config_digest"] == version.tags["config_digest"] == digest
    note = client.get_run(summary["run_id"]).data.tags[c.TAG_FINETUNE_PREFIX + "diet"]
    assert note == (
        f"fine-tuned from version 1 (epoch fraction 0.2, {delta.added} examples added, 0 removed); "
        "not trained from scratch (--finetune-only)"
    )
    assert f"INFO nlu_mlflow diet: {note}" in log  # one line per config says what is done
    assert summary["champion"]["version"] == "1"  # compared with production like any candidate
    assert summary["decision"] in (c.DECISION_PROMOTED, c.DECISION_KEPT)


def test_finetuned_metrics_equal_rasa_test_nlu_on_its_archive(nights, tmp_path):
    steps, client, _, _ = nights
    tuned = children(client, steps["fast"][0]["run_id"])["diet@finetuned"]
    archive = models.archive_path(f"runs:/{tuned.info.run_id}/model", tmp_path / "model")
    intent_report, entity_report = rasa_test_nlu(archive, PIZZA / "test.yml", tmp_path)
    logged = tuned.data.metrics
    assert logged[c.INTENT_F1_WEIGHTED] == pytest.approx(intent_report["weighted avg"]["f1-score"], abs=1e-9)
    assert logged[c.INTENT_ACCURACY] == pytest.approx(intent_report["accuracy"], abs=1e-9)
    assert logged[c.ENTITY_F1_WEIGHTED] == pytest.approx(entity_report["weighted avg"]["f1-score"], abs=1e-9)


def test_a_full_retrain_is_forced_after_fine_tunes_in_a_row(nights):
    steps, client, _, _ = nights
    summary, log = steps["full"]
    production = steps["fast"][0]["candidate"]["version"]
    runs = children(client, summary["run_id"])
    assert list(runs) == ["diet"]
    assert runs["diet"].data.tags[c.TAG_TRAINING] == c.TRAINING_SCRATCH
    reason = client.get_run(summary["run_id"]).data.tags[c.TAG_FULL_RETRAIN]
    assert reason == (
        f"production version {production} is fine-tune 1 in a row since a full training and full_retrain_every "
        "is 2: trained from scratch so that fine-tuned models do not drift"
    )
    assert f"WARNING nlu_mlflow --finetune-only: full retrain from scratch: {reason}" in log
    assert client.get_run(summary["run_id"]).data.tags[c.TAG_FINETUNE_PREFIX + "diet"] == (
        f"trained from scratch: full retrain ({reason})"
    )
    assert registry.get_version(MODEL, summary["candidate"]["version"]).tags[c.TAG_TRAINING] == "scratch"


def test_a_plain_finetune_night_trains_both_from_scratch_and_finetuned(nights, tmp_path):
    """The plan of a ``--finetune`` night (what the orchestrator trains, in order), made without training."""
    _, client, home, _ = nights
    values = {"data": PIZZA / "train.yml", "test_data": PIZZA / "test.yml", "configs": home / "configs"}
    built = settings.build({**values, "epochs": EPOCHS, "model_name": MODEL, "finetune": True})
    inputs = workflow.prepare(built)
    production = registry.alias_holder(MODEL)
    with mlflow.start_run(experiment_id=client.get_experiment_by_name(EXPERIMENT).experiment_id) as run:
        plan = finetuning.plan(built, inputs, inputs.train.to_yaml(tmp_path / "train.yml"), tmp_path)
    order = [
        (config.name, job.base.version if job else None) for config, job in plan.schedule(inputs.configs)
    ]
    assert order == [("diet", None), ("diet@finetuned", production.version)]
    assert plan.full_retrain is None and plan.scratch
    note = client.get_run(run.info.run_id).data.tags[c.TAG_FINETUNE_PREFIX + "diet"]
    assert note.startswith(
        f"fine-tuned from version {production.version} (epoch fraction 0.2, 0 examples added"
    )


def test_data_that_gains_regexes_and_a_lookup_table_is_trained_from_scratch_and_says_why(nights, tmp_path):
    """Issue 27's night at small scale: production was trained without regexes or lookup tables, today's data
    has two regexes and a lookup table; Rasa would stop the fine-tune mid-training (tests/rasa/
    test_finetune.py shows it), so the plan trains ``diet`` from scratch only and says why."""
    _, client, home, _ = nights
    data = load_nlu(PIZZA / "train.yml").training_data
    data.regex_features = [{"name": "zipcode", "pattern": r"\d{5}"}, {"name": "phone", "pattern": r"\d{10}"}]
    data.lookup_tables = [{"name": "topping", "elements": ["ham", "pineapple", "olives"]}]
    path = tmp_path / "today.yml"
    path.write_text(data.nlu_as_yaml(), encoding="utf-8")
    values = {"data": path, "test_data": PIZZA / "test.yml", "configs": home / "configs", "epochs": EPOCHS}
    built = settings.build({**values, "model_name": MODEL, "finetune": True})
    inputs = workflow.prepare(built)
    production = registry.alias_holder(MODEL)
    with mlflow.start_run(experiment_id=client.get_experiment_by_name(EXPERIMENT).experiment_id) as run:
        plan = finetuning.plan(built, inputs, inputs.train.to_yaml(tmp_path / "train.yml"), tmp_path)
    assert [(config.name, job) for config, job in plan.schedule(inputs.configs)] == [("diet", None)]
    note = client.get_run(run.info.run_id).data.tags[c.TAG_FINETUNE_PREFIX + "diet"]
    assert note.startswith(
        f"trained from scratch: regex and lookup-table features appear: production version {production.version} "
        "was trained without any (RegexFeaturizer had no pattern), today's data has 3;"
    ), note


def test_when_every_fine_tune_fails_a_finetune_only_run_trains_from_scratch(tmp_path, monkeypatch):
    """A fine-tune Rasa cannot make (here: production's archive is not a tar.gz) fails its candidate only."""
    broken = tmp_path / "production.tar.gz"
    broken.write_bytes(b"not an archive")

    def failing_plan(_settings, inputs, _train_yaml, _work):
        [config] = inputs.configs
        job = finetuning.FinetuneJob(
            finetuning._renamed(config), broken, finetune.decide.Base("9", config.name, "x"), 0.2, None
        )
        return finetuning.FinetunePlan((job,), {}, None, scratch=False)

    monkeypatch.setattr(finetuning, "plan", failing_plan)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.MlflowClient(uri).create_experiment("fallback", artifact_location=(tmp_path / "art").as_uri())
    values = {
        "data": PIZZA / "train.yml",
        "test_data": PIZZA / "test.yml",
        "configs": CONFIGS / "logreg_crf.yml",
    }
    values |= {"tracking_uri": uri, "experiment": "fallback", "project_dir": tmp_path, "register": False}
    result = workflow.run(settings.build({**values, "epochs": 1, "finetune_only": True}))
    assert [x.name for x in result.failed] == ["logreg_crf@finetuned"]
    assert [x.name for x in result.candidates] == ["logreg_crf"] and result.selection.best == "logreg_crf"
    client = mlflow.MlflowClient(uri)
    runs = children(client, result.run_id)
    assert runs["logreg_crf@finetuned"].info.status == "FAILED"
    assert runs["logreg_crf@finetuned"].data.tags[c.TAG_FINETUNED_FROM] == "9"
    assert client.get_run(result.run_id).data.tags[c.TAG_FULL_RETRAIN] == "every fine-tuned candidate failed"
