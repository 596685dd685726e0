"""Hyperparameter search (workflow/tune/): a study per config with a `search:` section, its trials nested
MLflow runs scored on a validation split of the training data, the best trial's config trained and tested.

The end-to-end tests search the light pipeline (LogisticRegression, no TensorFlow) on the pizza data; the
pruning test drives the real study, runs and logging with a stand-in for training, so that which trials
successive halving stops is known in advance.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from nlu_mlflow import constants as c
from nlu_mlflow.cli import app
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.tracking import runs
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import tune
from nlu_mlflow.workflow.settings import WorkflowSettings
from tests.helpers import CONFIGS, PIZZA, ROOT, servers

LOGREG_SEARCH = """# the light pipeline with two options searched
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: LogisticRegressionClassifier
    max_iter: 100
search:
  LogisticRegressionClassifier.max_iter: {int: [20, 200], log: true}
  CountVectorsFeaturizer.1.max_ngram: {choice: [3, 4, 5]}
"""
METRIC = c.VALIDATION_PREFIX + c.INTENT_F1_WEIGHTED


def search_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "logreg_search.yml"
    path.write_text(LOGREG_SEARCH)
    return path


def nested_runs(client: mlflow.MlflowClient, parent_id: str) -> list:
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_id}'",
        order_by=["attributes.run_name"],
    )


def texts(path: Path) -> list[str]:
    return [m.get("text") for m in load_nlu(path).examples]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One workflow run with --trials 3 on the pizza data."""
    home = tmp_path_factory.mktemp("tune")
    settings = WorkflowSettings(
        data=PIZZA / "train.yml",
        test_data=PIZZA / "test.yml",
        configs=search_config(home / "configs"),
        tracking_uri=f"sqlite:///{home / 'mlruns.db'}",
        trials=3,
        register=False,
        project_dir=home,
    )
    result = workflow.run(settings)
    return result, mlflow.MlflowClient(settings.tracking_uri), home


@pytest.mark.slow
def test_every_trial_is_a_run_nested_under_its_config_run(searched):
    result, client, _ = searched
    (candidate,) = result.candidates
    trials = nested_runs(client, candidate.run_id)
    assert [r.info.run_name for r in trials] == [f"logreg_search-trial-{n}" for n in range(3)]
    for run in trials:
        assert run.info.status == "FINISHED" and run.data.tags[c.TAG_ROLE] == c.ROLE_TRIAL
        assert set(run.data.params) == {
            "LogisticRegressionClassifier.max_iter",
            "CountVectorsFeaturizer.1.max_ngram",
        }
        assert 0.0 < run.data.metrics[METRIC] <= 1.0
    first = trials[0].data.params  # the config's own values are tried first
    assert (first["LogisticRegressionClassifier.max_iter"], first["CountVectorsFeaturizer.1.max_ngram"]) == (
        "100",
        "4",
    )


@pytest.mark.slow
def test_the_best_trials_config_is_the_candidate_trained_and_tested(searched):
    result, client, _ = searched
    (candidate,) = result.candidates
    config_run = client.get_run(candidate.run_id)
    params, metrics = config_run.data.params, config_run.data.metrics
    by_number = {r.data.tags[c.TAG_TRIAL]: r for r in nested_runs(client, candidate.run_id)}
    best = by_number[params["search.best_trial"]]
    assert metrics[c.SEARCH_BEST_SCORE] == max(r.data.metrics[METRIC] for r in by_number.values())
    assert best.data.metrics[METRIC] == metrics[c.SEARCH_BEST_SCORE]
    trained = yaml.safe_load(
        Path(client.download_artifacts(candidate.run_id, "config/logreg_search.yml")).read_text()
    )
    assert trained["pipeline"][3]["max_iter"] == int(
        best.data.params["LogisticRegressionClassifier.max_iter"]
    )
    assert trained["pipeline"][2]["max_ngram"] == int(best.data.params["CountVectorsFeaturizer.1.max_ngram"])
    assert "search" not in trained
    assert (
        params["search.best.LogisticRegressionClassifier.max_iter"]
        == best.data.params["LogisticRegressionClassifier.max_iter"]
    )
    assert params["search.study"] == config_run.data.tags[c.TAG_STUDY] == f"logreg_search-{candidate.run_id}"
    assert params["search.trial_numbers"] == "0,1,2"
    assert c.INTENT_F1_WEIGHTED in metrics, "the candidate is tested like any other"


@pytest.mark.slow
def test_trials_are_scored_on_a_validation_split_of_the_training_data_never_the_test_set(searched):
    result, client, home = searched
    (candidate,) = result.candidates
    listed = {a.path for a in client.list_artifacts(candidate.run_id, c.ARTIFACT_SEARCH)}
    expected = {"space.json", "trials.csv", "train.yml", "validation.yml", "optimization_history.png"}
    assert {f"{c.ARTIFACT_SEARCH}/{name}" for name in expected} <= listed
    folder = Path(client.download_artifacts(candidate.run_id, c.ARTIFACT_SEARCH, str(home / "search")))
    fit, held = texts(folder / "train.yml"), texts(folder / "validation.yml")
    assert sorted(fit + held) == sorted(texts(PIZZA / "train.yml")), "both parts come from the training data"
    assert not set(fit) & set(held) and 0.15 < len(held) / (len(fit) + len(held)) < 0.25


@pytest.mark.slow
def test_the_study_holds_what_a_worker_needs(searched):
    result, _, home = searched
    (candidate,) = result.candidates
    name = f"logreg_search-{candidate.run_id}"
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / tune.STORAGE_FILE}")
    spec = tune.StudySpec(**study.user_attrs[tune.SPEC_ATTR])
    assert (spec.parent_run_id, spec.trials, spec.seed, spec.metric) == (
        candidate.run_id,
        3,
        42,
        c.INTENT_F1_WEIGHTED,
    )
    assert spec.train_uri.endswith("search/train.yml") and spec.validation_uri.endswith(
        "search/validation.yml"
    )
    assert spec.config().search == pipelines.load(home / "configs" / "logreg_search.yml", seed=42).search
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


# --- pruning: the real study, runs and logging; training replaced by a known score ----------------------


def known_score(config, _metric, _data, _work):
    """Best at learning_rate 10**-2.5, a little better with more epochs: what successive halving sees."""
    rate = config.pipeline[5]["learning_rate"]
    return 1 - abs(math.log10(rate) + 2.5) / 3 + config.max_epochs() / 1000, 0.01


def known_scores_in_one_training(config, data, work, steps, report):
    """The same scores, reported at each rung from inside one training that stops where it is told."""
    for step in steps:
        score, _ = known_score(config.with_epoch_cap(step), c.INTENT_F1_WEIGHTED, data, work)
        if report(step, {c.INTENT_F1_WEIGHTED: score}):
            break
    return 0.01


@pytest.mark.parametrize(
    "one_training, epochs",
    [(True, 9 + 1 + 9 + 1 + 1 + 1), (False, 13 + 1 + 13 + 1 + 1 + 1)],
    ids=["rungs-inside-one-training", "a-training-per-rung"],
)
def test_successive_halving_stops_the_worse_trials_after_the_first_rung(
    tmp_path, monkeypatch, pizza_train, one_training, epochs
):
    monkeypatch.setattr(tune.worker, "_train_scoring_rungs", known_scores_in_one_training)
    monkeypatch.setattr(tune.worker, "_train_and_score", known_score)
    if not one_training:  # a pipeline rung_scores cannot score during training
        monkeypatch.setattr(tune.worker.rung_scores, "unsupported_reason", lambda pipeline: "not DIET")  # noqa: ARG005
    config = pipelines.load(CONFIGS / "search" / "diet_search.yml", epochs=9, seed=42)  # rungs 1, 3, 9
    rates = [1e-3, 1e-4, 3e-3, 2e-4, 5e-3, 1.5e-4]
    first = [{**config.current_values(), "DIETClassifier.learning_rate": rate} for rate in rates]
    settings = WorkflowSettings(data="x", epochs=9, trials=6, study_storage=f"sqlite:///{tmp_path / 'o.db'}")
    runs.configure(f"sqlite:///{tmp_path / 'mlruns.db'}", "tune-test", tmp_path)
    with runs.candidate_run(config.name, {}) as run:
        result = tune.search(config, pizza_train, settings, tmp_path / "work", first)
    trials = result.trials()
    # a trial goes on only while it is the best at its rung so far (fewer than 3 competitors: the top one)
    assert [sorted(t.intermediate_values) for t in trials] == [[1, 3, 9], [1], [1, 3, 9], [1], [1], [1]]
    complete, pruned = TrialState.COMPLETE, TrialState.PRUNED
    assert [t.state for t in trials] == [complete, pruned, complete, pruned, pruned, pruned]
    assert result.best.number == 2 and result.epochs_trained == epochs
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    logged = {r.data.tags[c.TAG_TRIAL]: r for r in nested_runs(client, run.info.run_id)}
    assert logged["1"].data.tags[c.TAG_TRIAL_STATE] == "PRUNED" and logged["1"].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(logged["0"].info.run_id, METRIC)] == [1, 3, 9]
    assert client.get_run(run.info.run_id).data.metrics["search_trials_pruned"] == 4


def test_waiting_for_other_workers_ends_at_a_deadline_that_names_the_running_trials(tmp_path):
    study = optuna.create_study(
        study_name="waited", storage=tune.storage(f"sqlite:///{tmp_path / 'o.db'}"), direction="maximize"
    )
    study.tell(study.ask(), 0.5)
    study.ask()  # trial 1: running, its worker alive (it just started)
    with pytest.raises(tune.SearchError, match=r"study waited: trial\(s\) 1 still running .* after 1 s"):
        tune.wait_for_workers(study, deadline_s=1.0, poll_s=0.2)


# --- bad input: one sentence, exit 2, nothing logged ------------------------------------------------------


def run_args(tmp_path: Path, tracking_uri: str, *extra: object, text: str = LOGREG_SEARCH) -> list[str]:
    search_config(tmp_path / "configs").write_text(text)
    return [
        "run", "--data", str(PIZZA / "train.yml"), "--test-data", str(PIZZA / "test.yml"),
        "--configs", str(tmp_path / "configs"), "--tracking-uri", tracking_uri,
        "--lock-file", str(tmp_path / "run.lock"), *map(str, extra),
    ]  # fmt: skip


def runs_left(tracking_uri: str) -> list:
    client = mlflow.MlflowClient(tracking_uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize(
    "extra, says",
    [
        (
            ["--trials", 2, "--validation-fraction", 1.5],
            "command line: --validation-fraction 1.5 must be a number strictly between 0 and 1",
        ),
        (["--trials", 2, "--cv-folds", 3], "--trials with --cv-folds"),
        (
            ["--trials", 2, "--study-storage", "postgresql+psycopg2://tuner:S3cret-pw@127.0.0.1:9/optuna"],
            "--study-storage postgresql+psycopg2://tuner:***@127.0.0.1:9/optuna: cannot open it",
        ),
        (["--trials", 2, "--study-storage", "nodb://x"], "--study-storage nodb://x: cannot open it"),
    ],
)
def test_bad_search_settings_are_one_sentence_and_leave_no_run(tmp_path, tracking_uri, extra, says):
    result = CliRunner().invoke(app, run_args(tmp_path, tracking_uri, *extra))
    assert result.exit_code == 2, result.output
    assert f"error: {says}" in result.output and "S3cret-pw" not in result.output
    assert runs_left(tracking_uri) == []


def test_a_bad_search_section_stops_the_run_before_anything_is_logged(tmp_path, tracking_uri):
    bad = LOGREG_SEARCH.replace("{choice: [3, 4, 5]}", "{int: [5, 3]}")
    result = CliRunner().invoke(app, run_args(tmp_path, tracking_uri, text=bad))  # no --trials: still checked
    assert result.exit_code == 2, result.output
    assert "search `CountVectorsFeaturizer.1.max_ngram`: low 5 is not below high 3" in result.output
    assert runs_left(tracking_uri) == []


def test_tune_worker_names_a_study_that_is_not_there(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    optuna.create_study(study_name="someone-elses", storage=storage)
    for study, says in (
        ("nope", "--study nope: no such study in"),
        ("someone-elses", "--study someone-elses: this study was not started by"),
    ):
        result = CliRunner().invoke(app, ["tune-worker", "--study", study, "--study-storage", storage])
        assert result.exit_code == 2, result.output
        assert f"error: {says}" in result.output


# --- two workers on one PostgreSQL study ------------------------------------------------------------------

WORKER_TRIALS = 6


def start_worker(study: str, storage: str, tracking_uri: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": tracking_uri}
    cmd = [
        sys.executable,
        "-m",
        "nlu_mlflow.cli",
        "tune-worker",
        "--study",
        study,
        "--study-storage",
        storage,
    ]
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=log.parent)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_one_postgresql_study(tmp_path, pizza_train):
    if servers.postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/install-postgres.sh`.")
    with servers.postgres(extra_databases=("optuna",)) as mlflow_db:
        storage = mlflow_db.rsplit("/", 1)[0] + "/optuna"
        mlflow.set_tracking_uri(mlflow_db)
        mlflow.set_experiment(
            experiment_id=mlflow.create_experiment("tune", (tmp_path / "artifacts").as_uri())
        )
        config = pipelines.load(search_config(tmp_path / "configs"), seed=42)
        settings = WorkflowSettings(
            data="x", trials=WORKER_TRIALS, study_storage=storage, project_dir=tmp_path
        )
        with runs.candidate_run(config.name, {}) as run:
            study, spec, _ = tune.start(config, pizza_train, settings, tmp_path / "work")
            logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
            workers = [start_worker(spec.study, storage, mlflow_db, log) for log in logs]
            codes = [w.wait(timeout=600) for w in workers]
        outputs = [log.read_text() for log in logs]
        assert codes == [0, 0], outputs
        trials = optuna.load_study(study_name=spec.study, storage=storage).trials
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == WORKER_TRIALS, [t.state for t in trials]
        ran = [int(re.search(r"^ran (\d+) trial", out, re.M).group(1)) for out in outputs]
        print(f"\ntwo workers on PostgreSQL: {ran} trials each, {len(trials)} trials in the study")
        assert sum(ran) >= WORKER_TRIALS and min(ran) >= 1, f"both workers ran trials: {ran}"
        logged = nested_runs(mlflow.MlflowClient(mlflow_db), run.info.run_id)
        # one MLflow run per finished trial: no trial number logged twice, none missing
        assert sorted(int(r.data.tags[c.TAG_TRIAL]) for r in logged) == sorted(t.number for t in finished)
        assert {r.data.tags[c.TAG_TRIAL]: r.info.run_id for r in logged} == {
            str(t.number): t.user_attrs["mlflow_run_id"] for t in finished
        }
