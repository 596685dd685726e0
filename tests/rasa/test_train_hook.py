"""The training hook (rasa/train_hook.py) on real Rasa trainings of the pizza data: every epoch of DIET reaches
the listeners with Rasa's own figures, a listener can stop the training, and the search's in-training scores
(rasa/rung_scores.py) equal the batched evaluation of the archive the same training writes."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import socket
import time

import mlflow
import pytest
import rasa.utils.train_utils as train_utils

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import (
    internals,
    pipelines,
    progress,
    rung_scores,
    runtime,
    scoring,
    train_hook,
    training,
)
from nlu_mlflow.rasa.data import load_nlu, split
from nlu_mlflow.tracking import curves
from tests.helpers import CONFIGS, PIZZA, servers

EPOCHS = 3


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """The pizza training data split as a search splits it: the part trained on (as YAML) and the rest."""
    runtime.quiet_rasa()
    work = tmp_path_factory.mktemp("hook")
    fit, held = split(load_nlu(PIZZA / "train.yml"), 0.3, 42, "--validation-fraction", ("fit", "validation"))
    return fit.to_yaml(work / "fit.yml"), held


@pytest.fixture(scope="module")
def hung_server():
    """A tracking server that accepts connections and never answers (a stalled server)."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"


@pytest.fixture(scope="module")
def watched(halves, hung_server, tmp_path_factory):
    """One DIET training of EPOCHS epochs, watched by a recorder, scored after every epoch, its curves logged
    to a real store, to a port nobody listens on and to a server that never answers."""
    work = tmp_path_factory.mktemp("watched")
    config = pipelines.load(CONFIGS / "diet.yml", epochs=EPOCHS, seed=42)
    recorder = train_hook.Recorder()
    scorer = rung_scores.RungScorer(
        halves[1],
        pipelines.entity_extractors(config),
        [1, 2, EPOCHS],
        lambda _e, _m: False,
        work / "r",
        False,
    )
    store = mlflow.MlflowClient(f"sqlite:///{work / 'mlruns.db'}")
    run_id = store.create_run(store.create_experiment("curves", (work / "a").as_uri())).info.run_id
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"})
    loggers = {
        "store": curves.CurveLogger(run_id, store),
        "refused": curves.CurveLogger("r1", mlflow.MlflowClient(f"http://127.0.0.1:{servers.free_port()}")),
        "hung": curves.CurveLogger("r2", mlflow.MlflowClient(hung_server)),
    }
    try:
        trained = training.train(
            config, halves[0], work / "model", listeners=[recorder, scorer, *loggers.values()]
        )
        closing = {name: _timed_close(logger) for name, logger in loggers.items()}
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
        for key in (k for k, v in saved.items() if v is None):
            os.environ.pop(key)
    return config, trained, recorder, scorer, (store, run_id, loggers, closing)


def _timed_close(logger: curves.CurveLogger) -> tuple[float, list[str]]:
    started = time.perf_counter()
    with _captured() as lines:
        logger.close(timeout=3)
    return time.perf_counter() - started, lines


@contextlib.contextmanager
def _captured():
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("nlu_mlflow").addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger("nlu_mlflow").removeHandler(handler)


@pytest.mark.slow
def test_every_epoch_of_diet_reaches_the_listeners_with_rasas_figures(watched):
    _, trained, recorder, _, _ = watched
    assert trained.archive.is_file()
    events = recorder.events
    assert [(e.component, e.epoch, e.epochs) for e in events] == [
        ("DIETClassifier", n, EPOCHS) for n in (1, 2, 3)
    ]
    assert {"t_loss", "i_acc", "e_f1"} <= set(events[0].logs)
    assert events[-1].logs["t_loss"] < events[0].logs["t_loss"], "DIET learns: its loss falls"
    assert events[0].seconds <= events[1].seconds <= events[2].seconds
    assert train_utils.create_common_callbacks.__module__ == "rasa.utils.train_utils", "Rasa's is back"


@pytest.mark.slow
def test_the_score_at_the_last_epoch_is_the_batched_evaluation_of_the_archive(watched, halves, tmp_path):
    config, trained, _, scorer, _ = watched
    assert [epoch for epoch, _ in scorer.scored] == [1, 2, EPOCHS]
    in_training = scorer.scored[-1][1]
    of_archive = scoring.validation_metrics(
        trained.archive, halves[1], pipelines.entity_extractors(config), tmp_path / "reports"
    )
    assert set(in_training) == set(of_archive) and c.INTENT_F1_WEIGHTED in in_training
    for name, value in of_archive.items():
        assert math.isclose(in_training[name], value, abs_tol=1e-9), name


@pytest.mark.slow
def test_the_curves_are_step_metrics_of_the_run_and_a_dead_server_costs_the_training_nothing(watched):
    _, trained, recorder, _, (store, run_id, loggers, closing) = watched
    history = store.get_metric_history(run_id, "curve/DIETClassifier/t_loss")
    assert [(m.step, m.value) for m in history] == [(e.epoch, e.logs["t_loss"]) for e in recorder.events]
    logged = set(store.get_run(run_id).data.metrics)
    assert {"curve/DIETClassifier/i_acc", "curve/DIETClassifier/e_f1"} <= logged
    assert closing["store"][1] == [] and loggers["store"].sent == len(recorder.events) * len(
        recorder.events[0].logs
    )
    assert trained.archive.is_file(), "the training finished although two servers never took a figure"
    for name in ("refused", "hung"):
        seconds, lines = closing[name]
        assert seconds < 10, f"closing the {name} logger waited {seconds:.1f} s"
        (warning,) = lines
        assert "training curves of run" in warning and "not logged" in warning
        assert f"epoch {EPOCHS}/{EPOCHS}" in warning and "t_loss" in warning, warning


@pytest.mark.slow
def test_a_pruned_trial_stops_training_at_its_rung_and_writes_no_archive(halves, tmp_path):
    config = pipelines.load(CONFIGS / "diet.yml", epochs=9, seed=42)
    asked = []

    def prune_at_first_rung(epoch, metrics):  # noqa: ARG001
        asked.append(epoch)
        return True

    scorer = rung_scores.RungScorer(halves[1], [], [1, 3, 9], prune_at_first_rung, tmp_path / "r")
    recorder = train_hook.Recorder()
    stopped, seconds = training.train_until_stopped(config, halves[0], tmp_path / "m", [recorder, scorer])
    assert stopped == 1 and asked == [1] and [e.epoch for e in recorder.events] == [1]
    assert not list((tmp_path / "m").glob("*.tar.gz")) and seconds > 0
    assert 0 <= scorer.scored[0][1][c.INTENT_F1_WEIGHTED] <= 1


def test_pipelines_the_search_cannot_score_in_training_say_why():
    diet = pipelines.load(CONFIGS / "diet.yml", seed=42)
    assert rung_scores.unsupported_reason(diet.pipeline) is None
    crf = pipelines.load(CONFIGS / "diet_intents_crf.yml", seed=42)
    assert "CRFEntityExtractor cannot be scored during training" in rung_scores.unsupported_reason(
        crf.pipeline
    )
    logreg = pipelines.load(CONFIGS / "logreg_crf.yml", seed=42)
    assert "0 DIETClassifiers" in rung_scores.unsupported_reason(logreg.pipeline)


def test_on_another_rasa_the_hook_stands_aside(monkeypatch):
    monkeypatch.setattr(internals, "installed_rasa", lambda: "3.7.0")
    monkeypatch.setattr(internals, "_warned", True)
    original = train_utils.create_common_callbacks
    with train_hook.watching(train_hook.Recorder()) as active:
        assert not active and train_utils.create_common_callbacks is original
    assert "3.7.0" in rung_scores.unsupported_reason([{"name": "DIETClassifier"}])


def event(epoch: int, epochs: int = 20, seconds: float | None = None) -> train_hook.EpochEnd:
    logs = {"t_loss": 2.0 / epoch, "i_acc": 0.5 + epoch / 100}
    return train_hook.EpochEnd("DIETClassifier", epoch, epochs, logs, seconds or 30.0 + 10 * epoch, 40.0)


def test_the_progress_line_shows_epoch_loss_accuracy_and_the_time_left():
    # after epoch 5 of 20: 4 epochs after the first took 40 s, 15 are left at 10 s
    assert (
        progress.line("diet", event(5))
        == "diet: DIETClassifier epoch 5/20  t_loss 0.400  i_acc 0.550  ETA 2:30"
    )
    assert progress.line("", event(20, seconds=7400)).endswith("epoch 20/20  t_loss 0.100  i_acc 0.700  done")
    assert progress.duration(3725) == "1:02:05"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_line_is_rewritten_elsewhere_a_log_line_every_tenth(caplog):
    screen = Terminal()
    shown = progress.Progress("diet", screen)
    for n in range(1, 21):
        shown.on_epoch(event(n), None)
    shown.on_end("DIETClassifier")
    text = screen.getvalue()
    assert text.count("\r") == 20 and text.endswith("\n") and text.count("\n") == 1
    assert "epoch 20/20" in text.rsplit("\r", 1)[1]
    caplog.set_level("INFO", logger="nlu_mlflow")
    logged = progress.Progress("diet", io.StringIO())
    for n in range(1, 21):
        logged.on_epoch(event(n), None)
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert [line.split("epoch ")[1].split()[0] for line in lines] == [f"{n}/20" for n in range(2, 21, 2)]
