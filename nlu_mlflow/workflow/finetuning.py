"""Fine-tuning from production: which configs also train from the production model's weights this run
(candidate ``<config>@finetuned``), and whether a --finetune-only run trains from scratch instead.

``decide.finetune`` judges; this module fetches the facts (production's tags, its archive, today's data as
Rasa's FinetuningValidator sees it, production's training data from its source run), says what is done with
each config and why in one log line and one parent-run tag (``nlu_mlflow.finetune.<config>``), and hands the
orchestrator the order of the candidates. A fine-tuned candidate then goes the way of every other one
(``candidates.run_candidate``): evaluated, gated, compared with production, selected on the primary metric.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide import finetune as decide
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import finetune
from nlu_mlflow.rasa.archive import check_archive
from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.rasa.pipelines import PipelineConfig
from nlu_mlflow.tracking import models, registry, runs
from nlu_mlflow.tracking.errors import AccessError, TrackingError
from nlu_mlflow.workflow.inputs import Inputs
from nlu_mlflow.workflow.settings import WorkflowSettings

logger = logging.getLogger("nlu_mlflow")

SCRATCH_LINEAGE = {c.TAG_TRAINING: c.TRAINING_SCRATCH}


@dataclass(frozen=True)
class FinetuneJob:
    """One candidate fine-tuned from production: ``config`` is already named ``<config>@finetuned``."""

    config: PipelineConfig
    archive: Path  # production's Rasa archive, checked
    base: decide.Base
    epoch_fraction: float
    delta: decide.Delta | None  # None: production's training data is not on record

    def lineage(self) -> dict[str, str]:
        """Tags of the candidate run and of the version it may become."""
        tags = {
            c.TAG_TRAINING: c.TRAINING_FINETUNED,
            c.TAG_FINETUNED_FROM: self.base.version,
            c.TAG_EPOCH_FRACTION: f"{self.epoch_fraction:g}",
            c.TAG_FINETUNE_DEPTH: str(self.base.depth + 1),
        }
        if self.base.run_id:
            tags[c.TAG_FINETUNED_FROM_RUN] = self.base.run_id
        if self.delta is not None:
            tags[c.TAG_DATA_ADDED] = str(self.delta.added)
            tags[c.TAG_DATA_REMOVED] = str(self.delta.removed)
            tags[c.TAG_BASE_EXAMPLES] = str(self.delta.base_examples)
        return tags


@dataclass(frozen=True)
class FinetunePlan:
    jobs: tuple[FinetuneJob, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)  # config -> what is done with it, and why
    full_retrain: str | None = None  # why a --finetune-only run trains from scratch
    scratch: bool = True  # False: --finetune-only, the from-scratch candidates are skipped

    def schedule(self, configs: list[PipelineConfig]) -> list[tuple[PipelineConfig, FinetuneJob | None]]:
        """The candidates in training order: each config from scratch, then fine-tuned where planned."""
        jobs = {decide.base_config(j.config.name): j for j in self.jobs}
        order: list[tuple[PipelineConfig, FinetuneJob | None]] = []
        for config in configs:
            order += [(config, None)] if self.scratch else []
            order += [(jobs[config.name].config, jobs[config.name])] if config.name in jobs else []
        return order


def plan(settings: WorkflowSettings, inputs: Inputs, train_yaml: Path, work: Path) -> FinetunePlan:
    """What this run fine-tunes (nothing without --finetune); said in the log and on the parent run."""
    if not settings.finetuning:
        return FinetunePlan()
    holder = registry.alias_holder(settings.model_name)
    base = decide.Base.from_tags(holder.version, holder.run_id, holder.tags) if holder else None
    reasons = {
        x.name: decide.config_problem(
            x.name, finetune.config_digest(x), finetune.epoch_components(x), base, settings.model_name
        )
        for x in inputs.configs
    }
    archive = None
    if holder is not None and base is not None and None in reasons.values():
        archive, reasons = _archive_reasons(reasons, holder, base, inputs, (train_yaml, work))
    possible = [x for x in inputs.configs if reasons[x.name] is None]
    jobs: tuple[FinetuneJob, ...] = ()
    full = None
    if possible and archive is not None and base is not None:
        delta = _delta(base, inputs, work / "production-data")
        if settings.finetune_only:
            full = decide.full_retrain_reason(
                base, settings.full_retrain_every, delta, settings.full_retrain_growth
            )
        if not full:
            jobs = tuple(
                FinetuneJob(_renamed(x), archive, base, settings.epoch_fraction, delta) for x in possible
            )
    result = FinetunePlan(jobs, {}, full, scratch=not (settings.finetune_only and jobs))
    return _announce(dataclasses.replace(result, notes=_notes(result, inputs.configs, reasons)))


def _archive_reasons(
    reasons: dict[str, str | None], holder: registry.Version, base: decide.Base, inputs: Inputs, paths
) -> tuple[Path | None, dict[str, str | None]]:
    """Production's archive (None when it cannot be read) and the reasons again, with those of the configs
    that could be fine-tuned on their own settings now judged against the archive (``paths``: the training
    data file and the work folder)."""
    train_yaml, work = paths
    archive, problem = _download(holder, work / "production")
    judged = dict(reasons)
    for x in inputs.configs:
        if judged[x.name] is None:
            judged[x.name] = (
                problem if archive is None else _archive_reason(archive, x, train_yaml, inputs, base.version)
            )
    return archive, judged


def _archive_reason(
    archive: Path, config: PipelineConfig, train_yaml: Path, inputs: Inputs, version: str
) -> str | None:
    """Why Rasa would refuse or stop this fine-tune: labels (its FinetuningValidator, before training),
    then the feature sizes its classifiers compare mid-training (regexes or lookup tables appearing, a
    LexicalSyntacticFeaturizer value gone, a shared vocabulary growing)."""
    view = finetune.training_view(config, train_yaml, inputs.project)
    problem = finetune.archive_problem(archive, view, version)
    return problem or finetune.feature_problem(archive, config, train_yaml, inputs.project, version)


def _renamed(config: PipelineConfig) -> PipelineConfig:
    return dataclasses.replace(config, name=decide.finetuned_name(config.name))


def _download(holder: registry.Version, work: Path) -> tuple[Path | None, str | None]:
    """Production's archive, checked before Rasa extracts it, or why it cannot be had."""
    try:
        archive = models.archive_path(holder.uri, work)
        check_archive(archive)
    except AccessError:
        raise
    except Exception as error:  # deleted artifacts, a model that is not a Rasa archive, the store's errors
        return None, f"production version {holder.version}'s model cannot be read ({type(error).__name__})"
    return archive, None


def _delta(base: decide.Base, inputs: Inputs, work: Path) -> decide.Delta | None:
    """Examples added and removed since production's training data, which its source run logged."""
    if base.train_digest == inputs.train.digest:
        return finetune.data_delta(inputs.train, inputs.train)
    try:
        folder = runs.download_folder(base.run_id, c.ARTIFACT_TRAINING_DATA, work) if base.run_id else None
        if folder is None:
            logger.info("production version %s: its training data is not on record", base.version)
            return None
        return finetune.data_delta(load_nlu(folder), inputs.train)
    except AccessError:
        raise
    except (TrackingError, InputError, OSError) as error:
        logger.warning("production version %s: its training data cannot be read (%s)", base.version, error)
        return None


def _notes(result: FinetunePlan, configs: list[PipelineConfig], reasons: dict[str, str | None]) -> dict:
    planned = {decide.base_config(j.config.name): j for j in result.jobs}
    notes = {}
    for config in configs:
        job, reason = planned.get(config.name), reasons[config.name]
        if job is not None:
            delta = job.delta
            change = (
                f"{delta.added} examples added, {delta.removed} removed" if delta else "data change unknown"
            )
            fraction = f"epoch fraction {job.epoch_fraction:g}"
            notes[config.name] = f"fine-tuned from version {job.base.version} ({fraction}, {change})" + (
                "" if result.scratch else "; not trained from scratch (--finetune-only)"
            )
        elif reason is None:  # could be fine-tuned, but a full retrain is due
            notes[config.name] = f"trained from scratch: full retrain ({result.full_retrain})"
        elif result.scratch:
            notes[config.name] = f"trained from scratch: {reason}"
        else:
            notes[config.name] = f"not trained (--finetune-only) and cannot be fine-tuned: {reason}"
    return notes


def _announce(result: FinetunePlan) -> FinetunePlan:
    for name, note in result.notes.items():
        logger.info("%s: %s", name, note)
    tags = {c.TAG_FINETUNE_PREFIX + name: note[: c.MAX_TAG_LENGTH] for name, note in result.notes.items()}
    if result.full_retrain:
        logger.warning("--finetune-only: full retrain from scratch: %s", result.full_retrain)
        tags[c.TAG_FULL_RETRAIN] = result.full_retrain
    runs.set_tags(tags)
    return result
