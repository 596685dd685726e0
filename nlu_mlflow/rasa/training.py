"""Train one Rasa config in this process through Rasa's public training API: an NLU model
(``train_nlu``), or with a project's domain and stories a whole assistant, NLU and dialogue policies
(``rasa.model_training.train``, what ``rasa train`` runs)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.console import library_output
from nlu_mlflow.rasa.pipelines import PipelineConfig
from nlu_mlflow.rasa.project import Project
from nlu_mlflow.rasa.train_hook import Listener, stopped_by, watching


@dataclass(frozen=True)
class TrainedModel:
    config: PipelineConfig
    archive: Path  # the .tar.gz Rasa wrote
    seconds: float

    @property
    def size_mb(self) -> float:
        return self.archive.stat().st_size / 1e6


CACHE_SIZE_ENV, CACHE_DIR_ENV = "RASA_MAX_CACHE_SIZE", "RASA_CACHE_DIRECTORY"  # rasa.engine.caching's


class TrainingFailed(RuntimeError):
    """Rasa did not produce a model archive."""


def train(
    config: PipelineConfig,
    train_yaml: Path,
    work_dir: Path,
    finetune_from: Path | None = None,
    epoch_fraction: float = 1.0,
    project: Project | None = None,
    listeners: Sequence[Listener] = (),
) -> TrainedModel:
    """Train ``config`` on ``train_yaml``; the archive lands in ``work_dir``. With a ``project`` that has
    stories, a whole assistant is trained (its domain, stories and rules with ``train_yaml`` as the NLU
    part). With ``finetune_from`` (an archive Rasa can fine-tune, see ``finetune.finetune_problem``)
    training starts from its weights and runs ``epoch_fraction`` of the configured epochs. ``listeners`` see
    every epoch of DIET, ResponseSelector and TED (``train_hook``: progress, curves)."""
    from rasa.model_training import train as train_full
    from rasa.model_training import train_nlu

    full, arguments = _rasa_arguments(config, train_yaml, work_dir, project)
    common = {
        "output": str(work_dir),
        "fixed_model_name": config.name,
        "model_to_finetune": str(finetune_from) if finetune_from else None,
        "finetuning_epoch_fraction": epoch_fraction,
    }
    started = time.perf_counter()
    with (
        library_output(),  # Rasa's banner
        _no_training_cache(finetune_from is not None),
        watching(*listeners),
    ):
        archive = train_full(**arguments, **common).model if full else train_nlu(**arguments, **common)
    seconds = time.perf_counter() - started
    if not archive or not Path(archive).is_file():
        raise TrainingFailed(f"{config.path}: Rasa finished training without writing a model archive.")
    return TrainedModel(config, Path(archive), seconds)


def train_until_stopped(
    config: PipelineConfig, train_yaml: Path, work_dir: Path, listeners: Sequence[Listener]
) -> tuple[int | None, float]:
    """Train ``config`` until a listener stops it (``train_hook.StopTraining``: a search trial scored at its
    last rung or pruned) or it ends; returns the epoch it stopped after (None: it ran to the end) and the
    seconds it took. A stopped training writes no archive."""
    started = time.perf_counter()
    try:
        train(config, train_yaml, work_dir, listeners=listeners)
    except Exception as error:
        stop = stopped_by(error)
        if stop is None:
            raise
        return stop.epoch, time.perf_counter() - started
    return None, time.perf_counter() - started


@contextmanager
def _no_training_cache(active: bool) -> Iterator[None]:
    """Rasa's training cache off for a fine-tune: its keys do not say that a node loads an earlier model, so
    featurizers trained from scratch on the same data (the run's other candidate) would be handed to the
    fine-tune, with another vocabulary than the weights it starts from. Off by default anyway (``runtime``);
    this keeps a user's RASA_MAX_CACHE_SIZE from reaching a fine-tune."""
    if not active:
        yield
        return
    saved = {k: os.environ.get(k) for k in (CACHE_SIZE_ENV, CACHE_DIR_ENV)}
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-nocache-") as empty:
        os.environ.update({CACHE_SIZE_ENV: "0", CACHE_DIR_ENV: empty})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def importer(config: PipelineConfig, train_yaml: Path, work_dir: Path, project: Project | None = None):
    """The ``TrainingDataImporter`` Rasa's training builds for ``train`` with these arguments, and whether it
    trains a whole assistant (True) or an NLU model (False)."""
    from rasa.shared.importers.importer import TrainingDataImporter

    full, arguments = _rasa_arguments(config, train_yaml, work_dir, project)
    if full:
        files = arguments["training_files"]
        return TrainingDataImporter.load_from_config(arguments["config"], arguments["domain"], files), True
    paths = [arguments["nlu_data"]]
    return (
        TrainingDataImporter.load_nlu_importer_from_config(
            arguments["config"], arguments["domain"], training_data_paths=paths
        ),
        False,
    )


def _rasa_arguments(
    config: PipelineConfig, train_yaml: Path, work_dir: Path, project: Project | None
) -> tuple[bool, dict]:
    """Whether a whole assistant is trained, and the arguments of Rasa's ``train`` (whole assistant) or
    ``train_nlu``; the config and a project's dialogue files are written to ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = str(config.write(work_dir / f"{config.name}.config.yml"))
    if project is not None and project.has_core:
        files = [str(train_yaml), *map(str, project.stage_training_files(work_dir))]
        return True, {"domain": str(project.domain_path), "config": config_file, "training_files": files}
    domain = str(project.domain_path) if project is not None else None
    return False, {"config": config_file, "nlu_data": str(train_yaml), "domain": domain}
