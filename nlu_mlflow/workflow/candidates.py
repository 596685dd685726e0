"""One candidate: train a pipeline, score it on the test data and the critical suite, log a child run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.rasa import finetune, pipelines, plots, scoring, training
from nlu_mlflow.tracking import models, runs
from nlu_mlflow.workflow import tune
from nlu_mlflow.workflow.inputs import Inputs
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True, eq=False)
class Candidate:
    name: str
    run_id: str
    model_uri: str
    extractors: list[str]
    scores: scoring.ModelScores
    train_seconds: float
    size_mb: float

    @property
    def metrics(self) -> dict[str, float]:
        return {
            **self.scores.metrics,
            c.TRAIN_SECONDS: self.train_seconds,
            c.MODEL_SIZE_MB: self.size_mb,
            c.EVAL_SECONDS: self.scores.evaluation.seconds,
        }


def run_candidate(
    config: pipelines.PipelineConfig,
    inputs: Inputs,
    settings: WorkflowSettings,
    train_yaml: Path,
    work: Path,
    env_tags: dict[str, str],
    helper: plots.PlotHelper,
) -> Candidate:
    """Train, evaluate and log ``config`` in a child run of the active run."""
    with runs.candidate_run(config.name, env_tags) as run:
        # hook (issue 14, search): with --trials, a config's `search:` section is searched first, in trials
        # nested under this run and scored on a validation split of the training data (workflow/tune.py);
        # the best trial's config is what is trained and tested below. Without either: the config as is.
        config = tune.best_config(config, inputs.train, settings, work)
        runs.log_params(candidate_params(config, inputs, settings))
        log_datasets(inputs)
        trained = training.train(config, train_yaml, work)
        logger.info("  %s: trained in %.1f s; evaluating", config.name, trained.seconds)
        extractors = pipelines.entity_extractors(config)
        with helper.capture(run.info.run_id, c.ARTIFACT_REPORTS):
            scores = scoring.score_archive(
                trained.archive, inputs.test, inputs.suite, extractors, work / "reports"
            )
        _log_scores(scores, config, work)
        model_uri = models.log_model(trained.archive).model_uri
        candidate = Candidate(
            config.name, run.info.run_id, model_uri, extractors, scores, trained.seconds, trained.size_mb
        )
        runs.log_metrics(candidate.metrics)
        logger.info(
            "  %s: %s = %.4f",
            config.name,
            settings.primary_metric,
            candidate.metrics.get(settings.primary_metric, 0),
        )
        return candidate


def _log_scores(scores: scoring.ModelScores, config: pipelines.PipelineConfig, work: Path) -> None:
    runs.log_artifacts(scores.evaluation.report_dir, c.ARTIFACT_REPORTS)
    runs.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
    runs.log_table(scores.evaluation.predictions, c.ARTIFACT_PREDICTIONS_TABLE)
    if scores.critical is not None:
        runs.log_table(scores.critical.table, c.ARTIFACT_CRITICAL_TABLE)


def candidate_params(config: pipelines.PipelineConfig, inputs: Inputs, settings: WorkflowSettings) -> dict:
    return {
        **pipelines.flatten(config),
        "config_file": config.path.name,
        "config_digest": finetune.config_digest(config),  # what a later fine-tune from this model checks
        "train_digest": inputs.train.digest,
        "test_digest": inputs.test.digest,
        "critical_digest": inputs.suite.digest if inputs.suite else None,
        "seed": settings.seed,
        "epochs_cap": settings.epochs,
    }


def log_datasets(inputs: Inputs) -> None:
    runs.log_dataset(inputs.train.to_frame(), inputs.train.source, "train", inputs.train.digest, "training")
    runs.log_dataset(inputs.test.to_frame(), inputs.test.source, "test", inputs.test.digest, "evaluation")
