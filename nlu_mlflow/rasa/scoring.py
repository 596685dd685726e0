"""Score one Rasa model archive: held-out evaluation plus the critical-utterance suite.

Used alike for every candidate and for the production model, so both are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.decide import critical_score
from nlu_mlflow.decide.critical_suite import CriticalSuite
from nlu_mlflow.rasa import evaluation, inference, runtime
from nlu_mlflow.rasa.data import NluData


@dataclass(frozen=True, eq=False)
class ModelScores:
    evaluation: evaluation.Evaluation
    critical: critical_score.CriticalResult | None

    @property
    def metrics(self) -> dict[str, float]:
        extra = self.critical.metrics() if self.critical else {}
        return {**self.evaluation.metrics, **extra}

    @property
    def correct(self) -> tuple[bool, ...]:
        return tuple(bool(x) for x in self.evaluation.predictions["intent_correct"])


def score_archive(
    archive: Path, test: NluData, suite: CriticalSuite | None, extractors: list[str], out_dir: Path
) -> ModelScores:
    processor = evaluation.load_processor(archive)
    result = evaluation.evaluate(processor, test, extractors, out_dir)
    critical_result = None
    if suite is not None:
        critical_result = critical_score.score(suite, inference.parse_texts(processor, suite.texts()))
    del processor
    runtime.release_memory()  # the model's graphs, Keras state and the freed heap go back now
    return ModelScores(result, critical_result)


def validation_metrics(
    archive: Path, data: NluData, extractors: list[str], out_dir: Path
) -> dict[str, float]:
    """The metrics of ``archive`` on ``data`` (a search trial's validation split): no plots, no suite."""
    processor = evaluation.load_processor(archive)
    result = evaluation.evaluate(processor, data, extractors, out_dir, plots=False)
    del processor
    runtime.release_memory()
    return result.metrics
