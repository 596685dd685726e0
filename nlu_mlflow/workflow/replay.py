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

from nlu_mlflow import constants as c
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


def tracker_url(value: str) -> str:
    """``live_traffic`` as a database URL: a URL as given, else the endpoints.yml's ``tracker_store:``."""
    if "://" in value:
        return value
    from nlu_mlflow.rasa.endpoints import tracker_store_url

    return tracker_store_url(Path(value))


def input_problems(live_traffic: str | None, window: str) -> list[str]:
    """Before any training: the window is readable and the tracker store answers and is Rasa's."""
    if not live_traffic:
        return []
    from nlu_mlflow.errors import InputError
    from nlu_mlflow.live.tracker_store import TrackerReader, TrackerStoreError

    try:
        rules.parse_window(window)
        reader = TrackerReader(tracker_url(live_traffic))
        try:
            reader.check()
        finally:
            reader.dispose()
    except InputError as error:
        return list(error.problems)
    except TrackerStoreError as error:
        return [f"--live-traffic: {error}"]
    return []


def project_threshold(configs) -> float | None:
    """The FallbackClassifier threshold of the project's own config (candidate ``project``), if it has one."""
    for config in configs:
        for component in config.pipeline if config.name == "project" else ():
            if component.get("name") == "FallbackClassifier":
                return float(component.get("threshold", DEFAULT_THRESHOLD))
    return None


def for_run(settings, best_uri: str, holder, inputs, work: Path) -> Replay | None:
    """The workflow's replay of the best candidate against production; logged on the active (parent) run and
    its flips queued in the inbox. None when no live traffic is set or there is no production yet."""
    if not settings.live_traffic:
        return None
    if holder is None:
        logger.info("replay of live traffic skipped: no production version to compare with")
        return None
    from nlu_mlflow.tracking import models

    live = LiveTraffic(tracker_url(settings.live_traffic), settings.live_window)
    candidate = models.archive_path(best_uri, work / "candidate")
    production = models.archive_path(holder.uri, work / "production")
    critical = frozenset(u.intent for u in inputs.suite.utterances) if inputs.suite else frozenset()
    result = replay(live, candidate, production, critical, project_threshold(inputs.configs))
    log(result, live, work)
    queued = queue_flips(result, settings.tracking_uri)
    logger.info("%s; %d flipped message(s) queued in the inbox", summary_line(result.report), queued)
    return result


def queue_flips(result: Replay, tracking_uri: str | None, inbox_url: str | None = None) -> int:
    """The flipped messages (masked) into the inbox with reason ``flip``, so a person labels exactly them."""
    from nlu_mlflow.decide import inbox as inbox_rules
    from nlu_mlflow.live.inbox_store import Flagged
    from nlu_mlflow.workflow.inbox import open_inbox

    flagged = [
        Flagged(inbox_rules.normalise(text), text, count, *rules.top_intent(before))
        for text, count, before, _ in result.flipped
    ]
    if not flagged:
        return 0
    return open_inbox(inbox_url, tracking_uri).flag(flagged, inbox_rules.FLIP)


def version_tags(report: ReplayReport, window: str, at: float | None = None) -> dict[str, str]:
    """The replay's figures as tags of the registered version (never text), with when and over what window."""
    tags = {f"{c.TAG_LIVE_PREFIX}{name}": f"{value:.6g}" for name, value in report.metrics().items()}
    return tags | {c.TAG_LIVE_REPLAYED_AT: f"{at or time.time():.0f}", c.TAG_LIVE_WINDOW: window}


def figures_of(tags: dict[str, str]) -> dict[str, float]:
    """The replay figures a version carries (``version_tags``); empty when it was never replayed."""
    return {
        k.removeprefix(c.TAG_LIVE_PREFIX): float(v)
        for k, v in tags.items()
        if k.startswith(c.TAG_LIVE_PREFIX)
    }


def stale(tags: dict[str, str], window: str, now: float | None = None) -> bool:
    """No recorded replay, or one older than the window: the figures no longer describe this week."""
    at = tags.get(c.TAG_LIVE_REPLAYED_AT)
    if not at or not figures_of(tags):
        return True
    return (now or time.time()) - float(at) > rules.parse_window(window).total_seconds()


def lines(figures: dict[str, float]) -> list[str]:
    """The figures as a person reads them before production moves."""
    if not figures:
        return ["live traffic: not replayed"]
    return [
        f"live traffic: {int(figures[c.LIVE_MESSAGES])} messages "
        f"({int(figures[c.LIVE_UNIQUE_MESSAGES])} unique), "
        f"agreement {figures[c.LIVE_AGREEMENT_RATE]:.1%}, flips {figures[c.LIVE_FLIP_RATE]:.1%} "
        f"({int(figures.get(c.LIVE_CRITICAL_FLIPS, 0))} on critical intents), fallback "
        f"{figures[c.LIVE_FALLBACK_RATE_PRODUCTION]:.1%} -> {figures[c.LIVE_FALLBACK_RATE_CANDIDATE]:.1%}"
    ]


def for_versions(live: LiveTraffic, candidate, production, work: Path) -> Replay:
    """A replay of two registered versions (manual ``promote`` when the recorded figures are stale)."""
    from nlu_mlflow.tracking import models

    archives = [models.archive_path(v.uri, work / name) for name, v in (("c", candidate), ("p", production))]
    return replay(live, archives[0], archives[1])
