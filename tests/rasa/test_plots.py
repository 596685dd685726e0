"""Rasa's plots drawn by the helper process: the same files Rasa draws in line, logged to the right run;
a failed or dead helper is a warning and a tag, and a helper that cannot start means drawing in line."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import evaluation, plots
from nlu_mlflow.tracking import runs as tracking


@pytest.fixture(scope="module")
def scored(logreg_model, pizza_test):
    """The logreg model's evaluation results (Rasa's result tuples) and its extractors."""
    processor = evaluation.load_processor(logreg_model.archive)
    intents, _, entities = evaluation.predict(processor, pizza_test)
    return intents, entities


@pytest.fixture()
def run_id(tracking_uri) -> str:
    tracking.configure(tracking_uri, "plots")  # opens the store keeping the log handlers (alembic)
    with mlflow.start_run() as run:
        pass  # a candidate's run has ended by the time its plots are logged
    return run.info.run_id


def artifact_names(run_id: str, path: str) -> set[str]:
    return {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(run_id, path)}


def test_the_helper_draws_what_rasa_draws_in_line_and_logs_it(scored, run_id, tmp_path):
    evaluation.rasa_reports(*scored, tmp_path / "inline")
    with (
        plots.PlotHelper(tracking.log_artifact_to, tracking.set_run_tags) as helper,
        helper.capture(run_id, c.ARTIFACT_REPORTS),
    ):
        evaluation.rasa_reports(*scored, tmp_path / "helper")
    inline = {p.name for p in (tmp_path / "inline").glob("*.png")}
    assert {"intent_confusion_matrix.png", "intent_histogram.png"} <= inline
    assert "CRFEntityExtractor_confusion_matrix.png" in inline
    assert list((tmp_path / "helper").glob("*.png")) == []  # drawn elsewhere, not beside the JSONs
    assert artifact_names(run_id, c.ARTIFACT_REPORTS) == inline
    assert {p.name for p in (tmp_path / "helper").glob("*.json")} == {
        p.name for p in (tmp_path / "inline").glob("*.json")
    }


def test_rasas_drawing_functions_are_back_after_capture():
    import rasa.utils.plotting as plotting

    original = plotting.plot_confusion_matrix
    with plots.PlotHelper(tracking.log_artifact_to, tracking.set_run_tags) as helper:
        with helper.capture("run", c.ARTIFACT_REPORTS):
            assert plotting.plot_confusion_matrix is not original
        assert plotting.plot_confusion_matrix is original


def test_a_failed_drawing_is_a_warning_and_a_tag(run_id, tmp_path, caplog):
    import rasa.utils.plotting as plotting

    with (
        caplog.at_level(logging.WARNING, logger="nlu_mlflow"),
        plots.PlotHelper(tracking.log_artifact_to, tracking.set_run_tags) as helper,
    ):
        with helper.capture(run_id, c.ARTIFACT_REPORTS):
            plotting.plot_paired_histogram([[0.5], [0.7]], "fine", output_file=str(tmp_path / "good.png"))
            plotting.plot_confusion_matrix(
                [[1, 2]], ["a"], output_file=str(tmp_path / "bad.png")
            )  # not an array
        assert helper.finish() == [run_id]
    assert artifact_names(run_id, c.ARTIFACT_REPORTS) == {"good.png"}
    tag = mlflow.MlflowClient().get_run(run_id).data.tags[c.TAG_PLOTS_ERROR]
    assert tag.startswith("bad.png was not drawn: ")
    assert "bad.png was not drawn" in caplog.text


def test_a_helper_that_died_fails_its_drawings_not_the_workflow(scored, run_id, tmp_path):
    with plots.PlotHelper(tracking.log_artifact_to, tracking.set_run_tags) as helper:
        with helper.capture(run_id, c.ARTIFACT_REPORTS):
            evaluation.rasa_reports(*scored, tmp_path / "reports")
        helper._process.kill()
        # intent confusion matrix and histogram, the same two for CRFEntityExtractor: none logged
        assert helper.finish() == [run_id] * 4
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    assert "the plot helper stopped" in tags[c.TAG_PLOTS_ERROR]


def test_without_a_helper_rasa_draws_in_this_process(scored, run_id, tmp_path, monkeypatch):
    # mocked: a machine where the helper process cannot be started
    def no_process(*_args, **_kwargs):
        raise OSError("cannot start processes here")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with (
        plots.PlotHelper(tracking.log_artifact_to, tracking.set_run_tags) as helper,
        helper.capture(run_id, c.ARTIFACT_REPORTS),
    ):
        evaluation.rasa_reports(*scored, tmp_path / "reports")
    assert "intent_confusion_matrix.png" in {p.name for p in (tmp_path / "reports").glob("*.png")}
