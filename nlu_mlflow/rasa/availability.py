"""Components that need something from outside the Python environment: is it there?

Checked before any training, so a config that cannot run on this machine fails in one sentence instead of
minutes into a training: spaCy's language models and MITIE's model files must be installed (a missing one
is an error naming the package and the install command); a Duckling server that does not answer is a
warning (Rasa's ``DucklingEntityExtractor`` then extracts nothing, and the run goes on without those
entities).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import requests

DUCKLING_ENV = "RASA_DUCKLING_HTTP_URL"  # Rasa reads it instead of the component's `url`
DUCKLING_TIMEOUT_S = 2.0
SPACY_DEFAULT_MODEL = "en_core_web_sm"  # what Rasa's SpacyNLP loads when `model` is not set


@dataclass(frozen=True)
class Availability:
    problems: list[str] = field(default_factory=list)  # the config cannot train here
    warnings: list[str] = field(default_factory=list)  # it trains, with less than configured


def check(path: Path | str, steps: list[dict], hint: str = "") -> Availability:
    """Check the pipeline ``steps`` of the config at ``path``; ``hint`` ends each problem (an alternative)."""
    result = Availability()
    for index, step in enumerate(steps):
        name = step.get("name")
        where = f"{path}: {name} (pipeline item {index + 1})"
        if name == "SpacyNLP":
            _add(result.problems, _spacy_problem(where, step.get("model") or SPACY_DEFAULT_MODEL), hint)
        elif name == "MitieNLP":
            _add(result.problems, _mitie_problem(where, step.get("model")), hint)
        elif name == "DucklingEntityExtractor":
            _add(result.warnings, _duckling_warning(where, step.get("url")), "")
    return result


def _add(found: list[str], sentence: str | None, hint: str) -> None:
    if sentence:
        found.append(sentence + (f" {hint}" if hint else ""))


def _spacy_problem(where: str, model: str) -> str | None:
    install = f"`pip install 'rasa[spacy]==3.6.21' && python -m spacy download {model}`"
    if importlib.util.find_spec("spacy") is None:
        return (
            f"{where} needs spaCy and its model '{model}', which are not installed here; install them "
            f"with {install}."
        )
    import spacy

    if spacy.util.is_package(model) or Path(model).is_dir():
        return None
    return f"{where} needs the spaCy model '{model}', which is not installed here; install it with {install}."


def _mitie_problem(where: str, model: str | None) -> str | None:
    if model and Path(model).is_file():
        return None
    return (
        f"{where} needs a MITIE model file (`model:` {model!r} is not a file here); download "
        "total_word_feature_extractor.dat and set `model:` to its path."
    )


def _duckling_warning(where: str, url: str | None) -> str | None:
    url = os.environ.get(DUCKLING_ENV) or url
    if not url:
        return f"{where} has no `url`; it extracts nothing until one is set."
    try:
        requests.get(url, timeout=DUCKLING_TIMEOUT_S)
    except requests.RequestException:
        return (
            f"{where}: the Duckling server at {url} does not answer, so its entities (e.g. dates, emails) "
            "are not extracted in this run; start one (`docker run -p 8000:8000 rasa/duckling`) or remove "
            "the component."
        )
    return None
