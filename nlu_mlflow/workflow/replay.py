"""Replay last week's live traffic through the best candidate and production before anything moves.

Order: read the window's user messages from Rasa's tracker store (in memory: each unique text once, with how
often it was said) -> parse them with production and with the candidate (batched where the pipeline allows)
-> compare (decide/replay.py: agreement, flips, fallback rates, entity changes, critical flips) -> log the
figures, the masked flips table, the confidence plot and the window on the parent run -> queue the flipped
messages, masked, in the inbox with reason ``flip``. The live gates (decide/replay.py) use the report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from nlu_mlflow.decide import masking
from nlu_mlflow.decide import replay as rules
from nlu_mlflow.decide.replay import ReplayReport, Traffic

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.3  # Rasa's FallbackClassifier default, when the pipeline has none


@dataclass(frozen=True)
class LiveTraffic:
    """Where the live messages are and which window to replay; masking as the inbox does it."""

    tracker_store: str  # an SQLAlchemy URL of Rasa's SQL tracker store (already resolved from endpoints.yml)
    window: str = "7d"
    sensitive_entities: tuple[str, ...] = ()
    mask: bool = True


@dataclass(frozen=True)
class Replay:
    report: ReplayReport
    traffic: Traffic
    seconds: float
    flipped: tuple[
        tuple[str, int, dict, dict], ...
    ]  # (masked text, count, production parse, candidate parse)


def read_traffic(live: LiveTraffic, now: float | None = None) -> Traffic:
    """The window's user messages as unique texts with counts (raw text, in memory only)."""
    from nlu_mlflow.live.tracker_store import TrackerReader
    from nlu_mlflow.live.window import read_window

    since = (now or time.time()) - rules.parse_window(live.window).total_seconds()
    reader = TrackerReader(live.tracker_store)
    try:
        window = read_window(reader, since)
    finally:
        reader.dispose()
    if window.malformed:
        logger.warning("replay: %d malformed event(s) in the window skipped", window.malformed)
    return Traffic(tuple(window.counts), tuple(window.counts.values()), window.first_id, window.last_id)


def replay(
    live: LiveTraffic,
    candidate: Path,
    production: Path,
    critical_intents: frozenset[str] = frozenset(),
    threshold: float | None = None,
) -> Replay:
    """Parse the window with both archives and compare; nothing is logged or written here.

    The fallback threshold: ``threshold`` (the project's FallbackClassifier), else the candidate's, else
    production's, else Rasa's default; applied to the intent ranking of a pipeline without one."""
    from nlu_mlflow.rasa import fast_load, inference

    started = time.perf_counter()
    traffic = read_traffic(live)
    parses, thresholds = [], [threshold]
    for archive in (production, candidate):
        processor = fast_load.load_processor(archive)
        parses.append(inference.parse_texts(processor, traffic.texts))
        thresholds.insert(1, inference.fallback_threshold(processor))
    threshold = next((t for t in thresholds if t is not None), DEFAULT_THRESHOLD)
    masker = _masker(live, dict(zip(traffic.texts, parses[0], strict=True)))
    report = rules.compare(traffic, parses[0], parses[1], threshold, critical_intents, masker)
    flipped = tuple(
        (masker(traffic.texts[i]), traffic.counts[i], parses[0][i], parses[1][i])
        for i in report.flipped_texts
    )
    return Replay(report, traffic, time.perf_counter() - started, flipped)


def _masker(live: LiveTraffic, production_parses: dict[str, dict]):
    """Mask a text with the inbox's rules (patterns, and the sensitive entities production found in it)."""

    def mask(text: str) -> str:
        if not live.mask:
            return text
        entities = production_parses.get(text, {}).get("entities") or []
        return masking.mask(text, entities, live.sensitive_entities).text

    return mask


def log(result: Replay, live: LiveTraffic, work: Path) -> None:
    """The replay on the active (parent) run."""
    from nlu_mlflow.live.tracker_store import safe_url
    from nlu_mlflow.tracking import replay as tracking_replay

    tracking_replay.log_replay(result.report, result.traffic, safe_url(live.tracker_store), live.window, work)


def summary_line(report: ReplayReport) -> str:
    critical = sum(f.count for f in report.critical_flips())
    return (
        f"replay of {report.messages} live messages ({report.unique} unique): agreement "
        f"{report.agreement_rate:.1%}, fallback {report.fallback_rate_production:.1%} -> "
        f"{report.fallback_rate_candidate:.1%}" + (f", {critical} on critical intents" if critical else "")
    )
