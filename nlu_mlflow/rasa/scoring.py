"""Score one Rasa model archive: held-out NLU evaluation, the critical-utterance suite and, for a whole
assistant, the test conversations.

Used alike for every candidate and for the production model, so both are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow import constants as c
from nlu_mlflow.decide import critical_score
from nlu_mlflow.decide.critical_suite import CriticalSuite
from nlu_mlflow.rasa import conversations, evaluation, inference, runtime
from nlu_mlflow.rasa.data import NluData
from nlu_mlflow.rasa.project import StagedTests


@dataclass(frozen=True, eq=False)
class ModelScores:
    evaluation: evaluation.Evaluation
    critical: critical_score.CriticalResult | None
    conversations: conversations.ConversationResults | None = None
    live: dict[str, float] | None = None  # the live test set's figures (live_intent_accuracy, ...)

    @property
    def metrics(self) -> dict[str, float]:
        extra = self.critical.metrics() if self.critical else {}
        dialogue = self.conversations.metrics if self.conversations else {}
        return {**self.evaluation.metrics, **extra, **dialogue, **(self.live or {})}

    @property
    def correct(self) -> dict[str, bool]:
        """Per test example (by identity, ``data.example_keys``): was its intent predicted right."""
        table = self.evaluation.predictions
        if evaluation.EXAMPLE_KEY not in table:
            return {str(i): bool(x) for i, x in enumerate(table["intent_correct"])}
        return {
            k: bool(x) for k, x in zip(table[evaluation.EXAMPLE_KEY], table["intent_correct"], strict=True)
        }


def score_archive(
    archive: Path,
    test: NluData,
    suite: CriticalSuite | None,
    extractors: list[str],
    out_dir: Path,
    tests: StagedTests | None = None,
    live: NluData | None = None,
) -> ModelScores:
    """Score ``archive`` on ``test``, the ``suite``, (a whole assistant only) the test conversations and the
    live test set ``live`` (annotated live messages, scored like the test data, without plots)."""
    agent = evaluation.load_agent(archive)
    processor = agent.processor
    result = evaluation.evaluate(processor, test, extractors, out_dir)
    critical_result = None
    if suite is not None:
        critical_result = critical_score.score(suite, inference.parse_texts(processor, suite.texts()))
    dialogue = None
    if tests is not None and conversations.has_core(agent):
        dialogue = conversations.evaluate(agent, tests.folder, out_dir, tests.sources)
    live_metrics = None if live is None else live_figures(processor, live, extractors, out_dir / "live")
    del processor, agent
    runtime.release_memory()  # the model's graphs, Keras state and the freed heap go back now
    return ModelScores(result, critical_result, dialogue, live_metrics)


def live_figures(processor, live: NluData, extractors: list[str], out_dir: Path) -> dict[str, float]:
    """Intent accuracy and weighted F1 on the live test set, under their own names."""
    metrics = evaluation.evaluate(processor, live, extractors, out_dir, plots=False).metrics
    return {
        c.LIVE_INTENT_ACCURACY: metrics[c.INTENT_ACCURACY],
        c.LIVE_INTENT_F1_WEIGHTED: metrics[c.INTENT_F1_WEIGHTED],
        c.LIVE_TEST_EXAMPLES: float(len(live.examples)),
    }


def validation_metrics(
    archive: Path, data: NluData, extractors: list[str], out_dir: Path
) -> dict[str, float]:
    """The metrics of ``archive`` on ``data`` (a search trial's validation split): no plots, no suite."""
    processor = evaluation.load_processor(archive)
    result = evaluation.evaluate(processor, data, extractors, out_dir, plots=False)
    del processor
    runtime.release_memory()
    return result.metrics
