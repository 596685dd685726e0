"""Log a replay of live traffic on the parent run: figures, the flips table, the confidence plot, the window.

Nothing here sees raw live text: the report holds only masked examples, and the window is logged as a
dataset of its figures (id range, counts, digest), so the decision can be rerun on the same messages.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource

from nlu_mlflow import constants as c
from nlu_mlflow.decide.redact import redact
from nlu_mlflow.decide.replay import ReplayReport, Traffic
from nlu_mlflow.tracking.errors import translated

LIVE_DATASET = "live-traffic"
LIVE_CONTEXT = "live-replay"
CONFIDENCE_PLOT = "live_confidence.png"


@translated()
def log_replay(report: ReplayReport, traffic: Traffic, source: str, window: str, work: Path) -> None:
    """Metrics, the masked flips table, the confidence distributions and the window as a dataset input."""
    mlflow.log_metrics(report.metrics())
    mlflow.log_table(pd.DataFrame(report.flips_table()), c.LIVE_FLIPS_TABLE)
    mlflow.log_artifact(str(confidence_plot(report, work / CONFIDENCE_PLOT)))
    log_window(traffic, source, window)


def log_window(traffic: Traffic, source: str, window: str) -> None:
    """The window as an MLflow dataset input: its id range, counts and digest, never a text."""
    frame = pd.DataFrame(
        [
            {
                "source": redact(source),
                "window": window,
                "first_event_id": traffic.first_id,
                "last_event_id": traffic.last_id,
                "messages": traffic.messages,
                "unique_texts": len(traffic.texts),
                "digest": traffic.digest(),
            }
        ]
    )
    where = CodeDatasetSource({"tracker_store": str(redact(source)), "window": window})  # a database
    dataset = mlflow.data.from_pandas(frame, source=where, name=LIVE_DATASET, digest=traffic.digest())
    mlflow.log_input(dataset, context=LIVE_CONTEXT)


def confidence_plot(report: ReplayReport, path: Path) -> Path:
    """Top-intent confidence of each model over the window's messages, weighted by how often each was said."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    bins = [i / 20 for i in range(21)]
    for label, values in (
        ("production", report.confidences_production),
        ("candidate", report.confidences_candidate),
    ):
        axes.hist(values, bins=bins, weights=report.weights, histtype="step", linewidth=1.5, label=label)
    axes.set(xlabel="top intent confidence", ylabel="live messages", title=f"{report.messages} live messages")
    axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
