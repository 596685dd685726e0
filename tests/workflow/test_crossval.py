"""Cross-validation: the pure aggregation, the seeded stratified folds, and one real 3-fold run logged
to a real MLflow store."""

import math
import re
from collections import Counter

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide import crossval
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import pipelines
from nlu_mlflow.rasa import runtime as rasa_runtime
from nlu_mlflow.rasa.data import stratified_folds
from nlu_mlflow.tracking import runs
from nlu_mlflow.workflow.crossval import cross_validate
from nlu_mlflow.workflow.inputs import load_suite
from tests.helpers import CONFIGS, PIZZA
from tests.helpers.cli import invoke, run_args


@pytest.mark.parametrize(
    ("per_fold", "expected"),
    [
        ([], {}),
        ([{"f1": 0.5}], {"f1_mean": 0.5, "f1_std": 0.0}),
        ([{"f1": 0.5}, {"f1": 0.7}], {"f1_mean": 0.6, "f1_std": 0.1}),  # population std: ddof=0
        ([{"f1": 1.0}, {"f1": 1.0}, {"f1": 1.0}], {"f1_mean": 1.0, "f1_std": 0.0}),
        ([{"a": 2.0, "b": 1.0}, {"a": 4.0}], {"a_mean": 3.0, "a_std": 1.0}),  # b missing in a fold
        (
            [
                {"intent_f1/greet": 0.0, "x": 1},
                {"intent_f1/greet": 0.9, "x": 2},
                {"intent_f1/greet": 0.6, "x": 3},
            ],
            {
                "intent_f1/greet_mean": 0.5,
                "intent_f1/greet_std": math.sqrt(0.14),
                "x_mean": 2.0,
                "x_std": math.sqrt(2 / 3),
            },
        ),
    ],
)
def test_aggregate(per_fold, expected):
    result = crossval.aggregate(per_fold)
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


def test_aggregate_keeps_nan():
    result = crossval.aggregate([{"f1": 0.5}, {"f1": float("nan")}])
    assert math.isnan(result["f1_mean"]) and math.isnan(result["f1_std"])


def records(data):
    return Counter((m.get("text"), m.get("intent")) for m in data.examples)


def test_folds_are_disjoint_cover_the_data_and_repeat_for_a_seed(pizza_train):
    pairs = stratified_folds(pizza_train, 3, seed=42)
    assert len(pairs) == 3
    everything = records(pizza_train)
    tested = Counter()
    for train, test in pairs:
        assert records(train) + records(test) == everything
        assert not set(records(train)) & set(records(test))
        tested += records(test)
    assert tested == everything  # every example is tested exactly once
    again = stratified_folds(pizza_train, 3, seed=42)
    assert [records(test) for _, test in again] == [records(test) for _, test in pairs]
    other = stratified_folds(pizza_train, 3, seed=7)
    assert [records(test) for _, test in other] != [records(test) for _, test in pairs]


def test_folds_are_stratified_on_the_intent(pizza_train):
    k = 4
    totals = Counter(m.get("intent") for m in pizza_train.examples)
    for _, test in stratified_folds(pizza_train, k, seed=42):
        counts = Counter(m.get("intent") for m in test.examples)
        for intent, total in totals.items():
            assert counts[intent] in (total // k, -(-total // k)), intent


def test_folds_refuse_more_folds_than_an_intent_has_examples(pizza_train):
    smallest = min(Counter(m.get("intent") for m in pizza_train.examples).values())
    with pytest.raises(InputError, match=rf"fewer than --cv-folds {smallest + 1}; add 1 more"):
        stratified_folds(pizza_train, smallest + 1, seed=42)
    with pytest.raises(InputError, match="at least 2 folds"):
        stratified_folds(pizza_train, 1, seed=42)


@pytest.mark.slow
def test_cross_validation_logs_mean_std_and_every_fold(pizza_train, tmp_path):
    rasa_runtime.quiet_rasa()
    config = pipelines.load(CONFIGS / "logreg_crf.yml", epochs=1, seed=42)
    suite = load_suite(PIZZA / "critical.yml", {m.get("intent") for m in pizza_train.examples})
    result = cross_validate(config, pizza_train, 3, 42, suite, tmp_path / "work")

    assert len(result.per_fold) == 3 and sum(n for _, n in result.fold_sizes) == len(pizza_train.examples)
    f1s = [fold[c.INTENT_F1_WEIGHTED] for fold in result.per_fold]
    assert result.summary["intent_f1_weighted_mean"] == pytest.approx(sum(f1s) / 3)

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    mlflow.set_tracking_uri(client.tracking_uri)
    experiment = client.create_experiment("cv", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        runs.log_cross_validation(result)

    logged = client.get_run(run.info.run_id).data
    for name in (c.INTENT_F1_WEIGHTED, c.INTENT_ACCURACY, c.CRITICAL_PASS_RATE, c.TRAIN_SECONDS):
        assert logged.metrics[name + "_mean"] == pytest.approx(result.summary[name + "_mean"])
        assert logged.metrics[name + "_std"] == pytest.approx(result.summary[name + "_std"])
    assert "intent_f1/greet_mean" in logged.metrics
    assert c.INTENT_F1_WEIGHTED not in logged.metrics  # no held-out number is implied
    assert logged.params == {"cv_folds": "3", "cv_seed": "42"}
    history = client.get_metric_history(run.info.run_id, c.INTENT_F1_WEIGHTED + "_fold")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (i, pytest.approx(f1)) for i, f1 in enumerate(f1s)
    ]
    table = client.load_table(experiment, crossval.ARTIFACT_CV_FOLDS, run_ids=[run.info.run_id])
    assert table["fold"].tolist() == [0, 1, 2]
    assert table[c.INTENT_F1_WEIGHTED].tolist() == pytest.approx(f1s)


def test_fold_problems_name_every_intent_with_too_few_examples(pizza_train):
    counts = Counter(m.get("intent") for m in pizza_train.examples)
    k = sorted(counts.values())[1] + 1  # at least the two smallest intents are too small
    problems = crossval.fold_problems(pizza_train.view, k)
    too_small = sorted(intent for intent, n in counts.items() if n < k)
    assert len(problems) == len(too_small) >= 2
    assert all(f"fewer than --cv-folds {k}" in p and str(PIZZA / "train.yml") in p for p in problems)
    assert sorted(re.search(r"intent '(\w+)'", p).group(1) for p in problems) == too_small
    assert crossval.fold_problems(pizza_train.view, 2) == []


def test_summary_frame_has_one_row_per_pipeline_with_mean_and_std():
    def result(name, f1s):
        per_fold = [{c.INTENT_F1_WEIGHTED: f1, "intent_f1/greet": 1.0} for f1 in f1s]
        return crossval.CVResult(
            name, len(f1s), 42, per_fold, crossval.aggregate(per_fold), [(2, 1)] * len(f1s)
        )

    frame = crossval.summary_frame([result("a", [0.5, 0.7]), result("b", [0.9, 0.9])])
    assert frame.to_dict("records") == [
        {
            "config": "a",
            "metric": c.INTENT_F1_WEIGHTED,
            "mean": pytest.approx(0.6),
            "std": pytest.approx(0.1),
        },
        {"config": "b", "metric": c.INTENT_F1_WEIGHTED, "mean": pytest.approx(0.9), "std": 0.0},
    ]


@pytest.mark.slow
def test_cli_cv_mode_logs_cv_metrics_and_registers_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    base = run_args(tmp_path, uri)
    too_many = invoke([*base, "--cv-folds", "30"])
    assert too_many.exit_code == 2, too_many.output
    assert mlflow.MlflowClient(uri).search_experiments() == [] or not mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()]
    )
    result = invoke([*base, "--cv-folds", "3"])
    assert result.exit_code == 0, result.output
    assert "cross-validated 1 pipeline(s) with 3 folds; nothing registered" in result.output
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "attributes.run_name = 'logreg_crf'"
    )
    assert {"intent_f1_weighted_mean", "intent_f1_weighted_std"} <= set(runs[0].data.metrics)
    assert client.search_model_versions() == []
