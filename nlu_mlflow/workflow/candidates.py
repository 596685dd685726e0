"""One candidate: train a config, score it on the test data, the critical suite and the test conversations,
log a child run.

What the parent needs of a candidate (``Candidate``) is also written to the child run as ``candidate.json``
with the scores record beside it, so a candidate trained in another process or on another machine reports
exactly what an in-process one does. A candidate that fails to train or evaluate becomes a FAILED child run
with the reason (``FailedCandidate``); the workflow goes on with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nlu_mlflow import constants as c
from nlu_mlflow.decide import score_record
from nlu_mlflow.decide.redact import redact_text
from nlu_mlflow.decide.summary import now_iso
from nlu_mlflow.rasa import finetune, pipelines, progress, scoring, training
from nlu_mlflow.rasa.project import StagedTests
from nlu_mlflow.tracking import curves, models, runs, score_cache
from nlu_mlflow.tracking.errors import TrackingError
from nlu_mlflow.workflow import tune
from nlu_mlflow.workflow.finetuning import SCRATCH_LINEAGE, FinetuneJob
from nlu_mlflow.workflow.inputs import Inputs
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

CANDIDATE_RECORD = "candidate.json"


@dataclass(frozen=True, eq=False)
class Candidate:
    """A trained and scored config, as selection, registration and the decision read it."""

    name: str
    run_id: str
    model_uri: str
    extractors: list[str]
    metrics: dict[str, float]
    correct: dict[str, bool]  # per test example (by identity): intent predicted right
    has_core: bool = False  # a whole assistant (NLU + dialogue policies)
    config_digest: str = ""
    critical_table: pd.DataFrame | None = field(default=None, repr=False)
    lineage: dict[str, str] = field(default_factory=dict)  # how it was trained: tags its version carries

    def to_record(self) -> dict:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "extractors": self.extractors,
            "has_core": self.has_core,
            "config_digest": self.config_digest,
            "lineage": self.lineage,
        }

    @classmethod
    def from_records(
        cls, record: dict, scores: dict, critical_table: pd.DataFrame | None = None
    ) -> Candidate:
        """A candidate from its ``candidate.json`` and scores record (e.g. logged by another process)."""
        rescored = score_record.scores(scores)
        return cls(
            record["name"], record["run_id"], record["model_uri"], list(record["extractors"]),
            dict(rescored.metrics), dict(rescored.correct or {}), bool(record.get("has_core")),
            record.get("config_digest", ""), critical_table, dict(record.get("lineage") or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class FailedCandidate:
    name: str
    run_id: str | None
    reason: str


class CandidateFailed(RuntimeError):
    def __init__(self, failed: FailedCandidate):
        super().__init__(failed.reason)
        self.failed = failed


@dataclass(frozen=True, eq=False)
class CandidateInputs:
    """What every candidate of one workflow run shares."""

    inputs: Inputs
    settings: WorkflowSettings
    train_yaml: Path
    tests: StagedTests | None
    env_tags: dict[str, str]


def run_candidate(
    config: pipelines.PipelineConfig,
    shared: CandidateInputs,
    work: Path,
    helper,
    job: FinetuneJob | None = None,
) -> Candidate:
    """Train, evaluate and log ``config`` in a child run of the active run; with a ``job``, fine-tuned from
    production (``job.config`` is ``config`` named ``<config>@finetuned``). A failure of Rasa's (training,
    loading, evaluating) tags the child run with the reason, ends it FAILED and raises ``CandidateFailed``."""
    with runs.candidate_run(config.name, shared.env_tags) as run:
        try:
            return _train_and_score(config, shared, work, helper, run.info.run_id, job)
        except TrackingError:
            raise  # the store failed, not the candidate: the workflow stops
        except Exception as error:
            reason = redact_text(failure_reason(error))[: c.MAX_TAG_LENGTH]
            logger.error("  %s: failed (%s); the other candidates go on", config.name, reason)
            runs.set_tags({c.TAG_ERROR: reason})
            raise CandidateFailed(FailedCandidate(config.name, run.info.run_id, reason)) from error


def _cause(error: BaseException) -> BaseException | None:
    """The exception ``error`` was raised from (or during), as a traceback shows it."""
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


def failure_reason(error: BaseException) -> str:
    """The error and, when a library wrapped it (Rasa's GraphComponentException), its root cause."""
    text = f"{type(error).__name__}: {error}".rstrip(".")
    root, cause = error, _cause(error)
    while cause is not None:
        root, cause = cause, _cause(cause)
    if root is not error:
        text += f" (caused by {type(root).__name__}: {root})"
    return text


def _train_and_score(config, shared: CandidateInputs, work: Path, helper, run_id: str, job) -> Candidate:
    inputs, settings = shared.inputs, shared.settings
    lineage = job.lineage() if job else dict(SCRATCH_LINEAGE)
    runs.set_tags(lineage)  # before training: a failed fine-tune still says where it started
    if job is None:
        # with --trials, a config's `search:` section is searched first, in trials nested under this run and
        # scored on a validation split of the training data (workflow/tune.py); the best trial's config is
        # what is trained and tested below. Without either: the config as is. A fine-tune searches nothing.
        config = tune.best_config(config, inputs.train, settings, work)
    runs.log_params(candidate_params(config, inputs, settings))
    log_datasets(inputs)
    runs.log_artifact(shared.train_yaml, c.ARTIFACT_TRAINING_DATA)  # what a later fine-tune compares with
    trained = _train(config, shared, work, run_id, job)
    logger.info("  %s: trained in %.1f s; evaluating", config.name, trained.seconds)
    extractors = pipelines.entity_extractors(config)
    with helper.capture(run_id, c.ARTIFACT_REPORTS):
        scores = scoring.score_archive(
            trained.archive,
            inputs.test,
            inputs.suite,
            extractors,
            work / "reports",
            shared.tests,
            inputs.live_test,
        )
    _log_scores(scores, config, work)
    logged = models.log_model(trained.archive, tags={c.TAG_CONFIG: config.name})
    metrics = {
        **scores.metrics,
        c.TRAIN_SECONDS: trained.seconds,
        c.MODEL_SIZE_MB: trained.size_mb,
        c.EVAL_SECONDS: scores.evaluation.seconds,
    }
    candidate = Candidate(
        config.name, run_id, logged.model_uri, extractors, metrics, scores.correct,
        scores.conversations is not None or bool(inputs.has_core), finetune.config_digest(config),
        scores.critical.table if scores.critical else None, lineage,
    )  # fmt: skip
    runs.log_metrics(metrics, model_id=logged.model_id)  # the Models tab lists the candidate with them
    save_records(candidate, inputs, run_id)
    logger.info(
        "  %s: %s = %.4f", config.name, settings.primary_metric, metrics.get(settings.primary_metric, 0)
    )
    return candidate


def _train(config, shared: CandidateInputs, work: Path, run_id: str, job) -> training.TrainedModel:
    """Train ``config``, its progress shown and its per-epoch figures logged on the run as curves."""
    curve_logger = curves.CurveLogger(run_id)
    try:
        return training.train(
            config,
            shared.train_yaml,
            work,
            project=shared.inputs.project,
            listeners=[progress.Progress(config.name), curve_logger],
            **_finetune_args(job),
        )
    finally:
        curve_logger.close()


def _finetune_args(job: FinetuneJob | None) -> dict:
    """Rasa's own fine-tuning (``model_to_finetune``, ``finetuning_epoch_fraction``) for a job."""
    return {"finetune_from": job.archive, "epoch_fraction": job.epoch_fraction} if job else {}


def save_records(candidate: Candidate, inputs: Inputs, run_id: str) -> None:
    """``candidate.json`` and the scores record in the candidate's run: what the parent reads."""
    from nlu_mlflow.workflow.champion import cache_key

    record = score_record.record(
        candidate.metrics, candidate.correct, inputs.intent_support, inputs.score_digests, now_iso()
    )
    score_cache.save(run_id, cache_key(inputs), record)
    runs.log_json(candidate.to_record(), CANDIDATE_RECORD)


def _log_scores(scores: scoring.ModelScores, config: pipelines.PipelineConfig, work: Path) -> None:
    runs.log_artifacts(scores.evaluation.report_dir, c.ARTIFACT_REPORTS)
    runs.log_artifact(config.write(work / f"{config.name}.yml"), c.ARTIFACT_CONFIG)
    runs.log_table(scores.evaluation.predictions, c.ARTIFACT_PREDICTIONS_TABLE)
    if scores.critical is not None:
        runs.log_table(scores.critical.table, c.ARTIFACT_CRITICAL_TABLE)
    if scores.conversations is not None:
        runs.log_table(scores.conversations.table, c.ARTIFACT_CONVERSATIONS_TABLE)


def candidate_params(config: pipelines.PipelineConfig, inputs: Inputs, settings: WorkflowSettings) -> dict:
    return {
        **pipelines.flatten(config),
        "config_file": config.path.name,
        "config_digest": finetune.config_digest(config),  # what a later fine-tune from this model checks
        **data_params(inputs),
        "seed": settings.seed,
        "epochs_cap": settings.epochs,
    }


def data_params(inputs: Inputs) -> dict:
    """The digests of everything a model is trained and tested on (``data_digest`` covers all training
    reads: NLU with synonyms, regexes, lookups and responses; domain; stories and rules)."""
    params = {
        "data_digest": inputs.data_digest,
        "train_digest": inputs.train.digest,
        "test_digest": inputs.test.digest,
        "critical_digest": inputs.suite.digest if inputs.suite else None,
    }
    if inputs.project is not None:
        params["domain_digest"] = inputs.project.domain_digest
        params["stories_digest"] = inputs.project.stories_digest
        params["test_stories_digest"] = inputs.project.tests_digest
    return params


def log_datasets(inputs: Inputs) -> None:
    """MLflow dataset inputs, one per kind of data: NLU train and test, and for a project its domain,
    stories (rules included) and test conversations."""
    runs.log_dataset(inputs.train.to_frame(), inputs.train.source, "train", inputs.train.digest, "training")
    runs.log_dataset(inputs.test.to_frame(), inputs.test.source, "test", inputs.test.digest, "evaluation")
    if inputs.live is not None:  # annotated live messages (`inbox pull`), part of the data "train" came from
        runs.log_dataset(inputs.live.to_frame(), inputs.live.source, "live", inputs.live.digest, "training")
    project = inputs.project
    if project is None:
        return
    runs.log_dataset(
        _frame("domain", str(project.domain_path)), str(project.domain_path), "domain", project.domain_digest,
        "training",
    )  # fmt: skip
    runs.log_dataset(
        _frame("stories", *map(str, project.story_files)), str(project.data_dir), "stories",
        project.stories_digest, "training",
    )  # fmt: skip
    if project.tests_digest:
        files = [str(p) for p in project.test_story_files]
        runs.log_dataset(
            _frame("test_stories", *files), files[0], "test_stories", project.tests_digest, "evaluation"
        )


def _frame(kind: str, *files: str) -> pd.DataFrame:
    return pd.DataFrame({"kind": [kind] * len(files), "file": list(files)})
