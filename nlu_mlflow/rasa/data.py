"""Load Rasa NLU training data, split it, fingerprint it and turn it into tables.

Rasa does the parsing (``load_data``) and the splits; this module adds per-file error messages, a
stable content digest, a pandas view used for MLflow dataset inputs and the plain records the
checks in ``decide.validation`` read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nlu_mlflow.decide import crossval
from nlu_mlflow.decide.validation import Example, Examples
from nlu_mlflow.errors import InputError

logger = logging.getLogger(__name__)

NLU_SUFFIXES = (".yml", ".yaml", ".json")


@dataclass(frozen=True)
class NluData:
    """Rasa training data plus where it came from."""

    training_data: object  # rasa.shared.nlu.training_data.training_data.TrainingData
    source: str  # file, folder or URL the user gave
    parts: tuple[tuple[str, object], ...] = ()  # (file, TrainingData) as read, for error messages

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parts)

    @property
    def examples(self) -> list:
        return list(self.training_data.intent_examples)

    @functools.cached_property
    def digest(self) -> str:
        """Everything training reads: examples, synonyms, regexes, lookup tables and responses, in any
        order or file layout (Rasa's own fingerprint, 16 hex chars)."""
        return self.training_data.fingerprint()[:16]

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        return examples_frame(self.examples)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    @functools.cached_property
    def view(self) -> Examples:
        """The examples as plain records, merged and file by file (what ``decide.validation`` checks)."""
        as_read = tuple(
            Example(m.get("text"), m.get("intent"), file)
            for file, part in self.parts
            for m in part.intent_examples
        )
        merged = tuple(Example(m.get("text"), m.get("intent")) for m in self.examples)
        return Examples(self.source, merged, as_read)

    def to_yaml(self, path: Path) -> Path:
        """Write the data as Rasa YAML (Rasa's own writer)."""
        path.write_text(self.training_data.nlu_as_yaml(), encoding="utf-8")
        return path


def nlu_files(path: Path) -> list[Path]:
    """The NLU files below ``path`` (itself when it is a file)."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; pass an existing Rasa NLU file or folder.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in NLU_SUFFIXES)
    if not files:
        raise InputError(
            f"{path}: the folder holds no .yml, .yaml or .json file; point --data at Rasa NLU data."
        )
    return files


def load_file(path: Path):
    """Load one Rasa NLU file, turning Rasa's exceptions into one clear sentence."""
    from rasa.shared.exceptions import RasaException
    from rasa.shared.nlu.training_data.loading import load_data

    try:
        data = load_data(str(path))
    except RasaException as exc:
        detail = " ".join(str(exc).split())
        raise InputError(
            f"{path}: not readable as Rasa NLU data ({_shorten(detail)}); fix the file so that "
            "`rasa data validate` accepts it."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{path}: not readable as Rasa NLU data ({exc}); save it as UTF-8 Rasa YAML."
        ) from None
    return data


def is_dialogue_file(path: Path) -> bool:
    """True for a Rasa stories or rules file without an ``nlu:`` section (Rasa's own checks).

    A file Rasa cannot parse counts as not a dialogue file, so ``load_file`` names its problem.
    """
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.data import is_nlu_file
    from rasa.shared.exceptions import RasaException
    from rasa.shared.utils.io import read_yaml_file

    try:
        if not YAMLStoryReader.is_stories_file(path) or is_nlu_file(str(path)):
            return False
        return isinstance(read_yaml_file(path), dict)
    except (RasaException, UnicodeDecodeError, ValueError):
        return False


def _nlu_part(path: Path, files: list[Path], project: bool = False) -> list[Path]:
    dialogue = [f for f in files if is_dialogue_file(f)]
    if dialogue:
        logger.log(
            logging.DEBUG if project else logging.INFO,  # in a project run they are trained, as dialogue
            "%s: stories/rules file(s) %s are not NLU data; only the NLU files are used.",
            path,
            ", ".join(f.name for f in dialogue),
        )
    nlu = [f for f in files if f not in dialogue]
    if not nlu:
        raise InputError(
            f"{path}: holds only stories/rules files; point --data at a folder or file with an "
            "`nlu:` section."
        )
    return nlu


def load_nlu(path: Path | str, files: list[Path] | None = None, project: bool = False) -> NluData:
    """Load a Rasa NLU file or folder (or the given ``files``, reported as ``path``); every file is read on
    its own so errors can name it.

    Stories and rules files in a project's data folder are recognised and left out (they are valid
    Rasa data, only not NLU data).
    """
    path = Path(path)
    files = _nlu_part(path, files if files is not None else nlu_files(path), project)
    parts = tuple((str(f), load_file(f)) for f in files)
    datas = [d for _, d in parts]
    merged = datas[0].merge(*datas[1:]) if len(datas) > 1 else datas[0]
    if not merged.intent_examples:
        raise InputError(f"{path}: holds no intent examples; add an `nlu:` section with `- intent:` entries.")
    return NluData(merged, str(path), parts)


def of_files(data: NluData, files: list[str], source: str) -> NluData | None:
    """The part of ``data`` read from ``files`` (None when none of them is among its files)."""
    parts = tuple((name, part) for name, part in data.parts if name in set(files))
    if not parts:
        return None
    datas = [part for _, part in parts]
    return NluData(datas[0].merge(*datas[1:]) if len(datas) > 1 else datas[0], source, parts)


def split(
    data: NluData,
    test_fraction: float,
    seed: int,
    option: str = "--test-fraction",
    names: tuple[str, str] = ("train", "test"),
) -> tuple[NluData, NluData]:
    """Seeded split that keeps each intent's share (Rasa's ``train_test_split``); ``option`` names the
    fraction in messages, ``names`` the two parts in their sources (a search splits off ``validation``)."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"{option} {test_fraction}: must lie between 0 and 1, e.g. 0.2.")
    train, test = data.training_data.train_test_split(train_frac=1.0 - test_fraction, random_seed=seed)
    label = f"{data.source} (split {1 - test_fraction:.2f}/{test_fraction:.2f}, seed {seed})"
    return NluData(train, f"{label} {names[0]}", data.parts), NluData(test, f"{label} {names[1]}", data.parts)


def _entity_key(entity: dict) -> tuple:
    return (entity.get("start"), entity.get("end"), entity.get("entity"), str(entity.get("value")))


def example_record(message) -> dict:
    entities = sorted((e for e in message.get("entities") or []), key=_entity_key)
    return {
        "text": message.get("text"),
        "intent": message.get("intent"),
        "entities": [
            {"entity": e.get("entity"), "value": e.get("value"), "start": e.get("start"), "end": e.get("end")}
            for e in entities
        ],
    }


def examples_digest(messages: list) -> str:
    """Content digest independent of file layout and order (16 hex chars of SHA-256)."""
    records = sorted(json.dumps(example_record(m), sort_keys=True, default=str) for m in messages)
    return hashlib.sha256("\n".join(records).encode("utf-8")).hexdigest()[:16]


def example_keys(messages: list) -> list[str]:
    """Each example's identity, for pairing two models' results example by example whatever the order:
    its content digest (text, intent, entities), plus ``#n`` for the n-th repeat of the same example."""
    seen: dict[str, int] = {}
    keys = []
    for message in messages:
        digest = examples_digest([message])
        seen[digest] = seen.get(digest, 0) + 1
        keys.append(digest if seen[digest] == 1 else f"{digest}#{seen[digest]}")
    return keys


def examples_frame(messages: list) -> pd.DataFrame:
    rows = [example_record(m) for m in messages]
    frame = pd.DataFrame(rows, columns=["text", "intent", "entities"])
    frame["entities"] = frame["entities"].map(json.dumps)
    return frame


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def stratified_folds(data: NluData, k: int, seed: int) -> list[tuple[NluData, NluData]]:
    """``k`` (train, test) pairs: stratified on the intent, shuffled with ``seed``, so the same data,
    ``k`` and ``seed`` always give the same folds. Every example is in exactly one test fold.

    Raises ``InputError`` when ``k`` < 2 or an intent has fewer than ``k`` examples.
    """
    from sklearn.model_selection import StratifiedKFold

    problems = crossval.fold_problems(data.view, k)
    if problems:
        raise InputError(problems)
    examples = data.examples
    intents = [m.get("intent") for m in examples]
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = []
    for i, (train_idx, test_idx) in enumerate(splitter.split([[0]] * len(examples), intents)):
        label = f"{data.source} (cv fold {i}, k={k}, seed {seed})"
        train = _subset(data, [examples[j] for j in train_idx], label + " train")
        test = _subset(data, [examples[j] for j in test_idx], label + " test")
        pairs.append((train, test))
    return pairs


def _subset(data: NluData, examples: list, source: str) -> NluData:
    from rasa.shared.nlu.training_data.training_data import TrainingData

    whole = data.training_data
    subset = TrainingData(
        examples,
        entity_synonyms=whole.entity_synonyms,
        regex_features=whole.regex_features,
        lookup_tables=whole.lookup_tables,
    )
    return NluData(subset, source, data.parts)
