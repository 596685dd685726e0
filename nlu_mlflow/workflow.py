"""The orchestrator: the only module that knows the order of the steps.

load config + data -> validate -> (for each pipeline: train -> evaluate -> log) -> select best.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow import data as nlu_data
from nlu_mlflow import evaluation, pipelines, rasa_runtime, selection, tracking, training, validation
from nlu_mlflow.errors import InputError

logger = logging.getLogger("nlu_mlflow")


@dataclass(frozen=True)
class WorkflowSettings:
    data: Path
    test_data: Path | None = None
    test_fraction: float = 0.2
    seed: int = c.DEFAULT_SEED
    configs: Path = Path("configs")
    epochs: int | None = None
    experiment: str = c.DEFAULT_EXPERIMENT
    tracking_uri: str | None = None
    primary_metric: str = c.DEFAULT_PRIMARY_METRIC
    min_examples: int = c.DEFAULT_MIN_EXAMPLES_PER_INTENT
    allow_conflicts: bool = False
    project_dir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Inputs:
    train: nlu_data.NluData
    test: nlu_data.NluData
    configs: list[pipelines.PipelineConfig]
    overlap: list[str]


@dataclass(frozen=True)
class Candidate:
    name: str
    run_id: str
    metrics: dict[str, float]
    archive: Path


@dataclass(frozen=True)
class WorkflowResult:
    run_id: str
    tracking_uri: str
    candidates: list[Candidate]
    selection: selection.Selection

    @property
    def best(self) -> Candidate | None:
        return next((x for x in self.candidates if x.name == self.selection.best), None)


def prepare(settings: WorkflowSettings) -> Inputs:
    """Load and check every input; raises InputError before anything is trained or logged."""
    configs = pipelines.load_all(settings.configs, settings.epochs, settings.seed)
    full = nlu_data.load_nlu(settings.data)
    problems = validation.check_training_data(full, settings.min_examples, settings.allow_conflicts)
    if settings.test_data is not None:
        train, test = full, nlu_data.load_nlu(settings.test_data)
    else:
        train, test = nlu_data.split(full, settings.test_fraction, settings.seed)
    problems += validation.check_test_data(train, test)
    if problems:
        raise InputError(problems)
    overlap = nlu_data.overlapping_texts(train, test)
    if overlap:
        logger.warning(
            "%d test example(s) also occur in the training data (e.g. %r); their scores are optimistic.",
            len(overlap),
            overlap[0],
        )
    return Inputs(train, test, configs, overlap)


def run(settings: WorkflowSettings) -> WorkflowResult:
    """Train, evaluate and log every pipeline; one parent run, one child run per config."""
    inputs = prepare(settings)
    rasa_runtime.quiet_rasa()
    uri = tracking.configure(settings.tracking_uri, settings.experiment, settings.project_dir)
    env_tags = tracking.environment_tags(rasa_runtime.versions(), settings.project_dir)
    with (
        tempfile.TemporaryDirectory(prefix="nlu-mlflow-") as tmp,
        tracking.workflow_run("workflow", env_tags) as parent,
    ):
        work = Path(tmp)
        _log_workflow_inputs(settings, inputs)
        train_yaml = inputs.train.to_yaml(work / "train.yml")
        candidates = []
        for i, config in enumerate(inputs.configs, start=1):
            logger.info("[%d/%d] %s: training", i, len(inputs.configs), config.name)
            candidates.append(
                _run_candidate(config, inputs, settings, train_yaml, work / config.name, env_tags)
            )
        chosen = selection.select_best({x.name: x.metrics for x in candidates}, settings.primary_metric)
        result = WorkflowResult(parent.info.run_id, uri, candidates, chosen)
        _log_selection(result, settings)
    return result


def _run_candidate(config, inputs: Inputs, settings, train_yaml: Path, work: Path, env_tags) -> Candidate:
    with tracking.candidate_run(config.name, env_tags) as run:
        tracking.log_params(_candidate_params(config, inputs, settings))
        _log_datasets(inputs)
        trained = training.train(config, train_yaml, work)
        logger.info(
            "  %s: trained in %.1f s; evaluating on %d examples",
            config.name,
            trained.seconds,
            len(inputs.test.examples),
        )
        processor = evaluation.load_processor(trained.archive)
        result = evaluation.evaluate(
            processor, inputs.test, pipelines.entity_extractors(config), work / "reports"
        )
        del processor
        scores = {
            **result.metrics,
            c.TRAIN_SECONDS: trained.seconds,
            c.EVAL_SECONDS: result.seconds,
            c.MODEL_SIZE_MB: trained.size_mb,
        }
        tracking.log_metrics(scores)
        tracking.log_artifacts(result.report_dir, c.ARTIFACT_REPORTS)
        tracking.log_artifact(trained.archive, c.ARTIFACT_ARCHIVE)
        tracking.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
        tracking.log_table(result.predictions, c.ARTIFACT_PREDICTIONS_TABLE)
        logger.info(
            "  %s: %s = %.4f", config.name, settings.primary_metric, scores.get(settings.primary_metric, 0)
        )
        return Candidate(config.name, run.info.run_id, scores, trained.archive)


def _candidate_params(config, inputs: Inputs, settings: WorkflowSettings) -> dict[str, object]:
    return {
        **pipelines.flatten(config),
        "config_file": config.path.name,
        "train_digest": inputs.train.digest,
        "test_digest": inputs.test.digest,
        "seed": settings.seed,
        "epochs_cap": settings.epochs,
    }


def _log_datasets(inputs: Inputs) -> None:
    tracking.log_dataset(
        inputs.train.to_frame(), inputs.train.source, "train", inputs.train.digest, "training"
    )
    tracking.log_dataset(inputs.test.to_frame(), inputs.test.source, "test", inputs.test.digest, "evaluation")


def _log_workflow_inputs(settings: WorkflowSettings, inputs: Inputs) -> None:
    tracking.log_params(
        {
            # names differ from the MLproject parameters, which `mlflow run` logs on this run already
            "data_source": inputs.train.source,
            "test_source": inputs.test.source,
            "test_fraction": None if settings.test_data else settings.test_fraction,
            "seed": settings.seed,
            "epochs_cap": settings.epochs,
            "config_names": ",".join(x.name for x in inputs.configs),
            "primary_metric": settings.primary_metric,
            "train_digest": inputs.train.digest,
            "test_digest": inputs.test.digest,
            "train_examples": len(inputs.train.examples),
            "test_examples": len(inputs.test.examples),
        }
    )
    _log_datasets(inputs)


def _log_selection(result: WorkflowResult, settings: WorkflowSettings) -> None:
    best = result.best
    if best is not None:
        tracking.set_run_tags(best.run_id, {c.TAG_BEST: "true"})
        tracking.set_tags({c.TAG_BEST: best.name, "best_run_id": best.run_id})
        tracking.log_metrics({f"best_{k}": best.metrics[k] for k in c.KEY_METRICS if k in best.metrics})
    tracking.log_json({"best": result.selection.best, "reasons": result.selection.reasons}, "selection.json")
    tracking.set_description(describe(result, settings))
    tracking.log_table(summary_table(result, settings.primary_metric), "summary.json")


def describe(result: WorkflowResult, settings: WorkflowSettings) -> str:
    """Markdown shown as the parent run's description in the MLflow UI."""
    best = result.selection.best
    lines = [
        f"**Data**: `{settings.data}`; test: `{settings.test_data or f'{settings.test_fraction:.0%} split'}`",
        f"**Configs**: {', '.join(x.name for x in result.candidates)}",
        f"**Best** ({settings.primary_metric}): {best or 'none'}",
    ]
    lines += [f"- {name}: {why}" for name, why in sorted(result.selection.reasons.items())]
    return "\n\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:])


def summary_table(result: WorkflowResult, primary_metric: str) -> pd.DataFrame:
    """One row per pipeline with its key metrics; ``best`` marks the chosen one."""
    columns = [primary_metric] + [k for k in c.KEY_METRICS if k != primary_metric]
    rows = [
        {
            "config": x.name,
            "best": "*" if x.name == result.selection.best else "",
            **{k: x.metrics.get(k) for k in columns},
        }
        for x in result.candidates
    ]
    return pd.DataFrame(rows).dropna(axis=1, how="all")
