"""Score one Rasa model archive: held-out evaluation plus the critical-utterance suite.

Used alike for every candidate and for the production model, so both are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import critical, evaluation, inference, rasa_runtime
from nlu_mlflow.data import NluData


@dataclass(frozen=True, eq=False)
class ModelScores:
    evaluation: evaluation.Evaluation
    critical: critical.CriticalResult | None

    @property
    def metrics(self) -> dict[str, float]:
        extra = self.critical.metrics() if self.critical else {}
        return {**self.evaluation.metrics, **extra}

    @property
    def correct(self) -> tuple[bool, ...]:
        return tuple(bool(x) for x in self.evaluation.predictions["intent_correct"])


def score_archive(
    archive: Path, test: NluData, suite: critical.CriticalSuite | None, extractors: list[str], out_dir: Path
) -> ModelScores:
    processor = evaluation.load_processor(archive)
    result = evaluation.evaluate(processor, test, extractors, out_dir)
    critical_result = None
    if suite is not None:
        critical_result = critical.score(suite, inference.parse_texts(processor, critical.texts(suite)))
    del processor
    rasa_runtime.release_memory()  # the model's graphs, Keras state and the freed heap go back now
    return ModelScores(result, critical_result)
