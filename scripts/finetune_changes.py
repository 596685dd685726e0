"""Which data changes Rasa 3.6.21 refuses mid-fine-tune and which it absorbs, tried against Rasa itself.

    /work/bin/heavy .venv/bin/python scripts/finetune_changes.py

Trains small DIET bases (configs/diet.yml, 2 epochs, seed 42) on the pizza data, then for each change: what
the pre-check (``nlu_mlflow.rasa.finetune.finetune_problem``) predicts, and what Rasa does when asked to
fine-tune (``training.train`` with ``finetune_from``, fraction 0.5): "absorbed" (an archive) or the first
sentence of its error. The table in docs/finetuning.md comes from this script's output.
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu_mlflow.rasa import runtime  # noqa: E402  (quiet, offline Rasa)

REGEXES = [{"name": "account_number", "pattern": r"\d{10}"}, {"name": "zipcode", "pattern": r"\d{5}"}]
LOOKUP = [{"name": "topping", "elements": ["ham", "pineapple", "olives", "mushrooms"]}]


def data(base, test=None, regexes=(), lookups=(), drop=None, extra=()):
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    examples = list(base.training_examples) + (list(test.training_examples) if test else [])
    examples = [m for m in examples if not (drop and drop(m))] + [Message(data=e) for e in extra]
    return TrainingData(examples, regex_features=list(regexes), lookup_tables=copy.deepcopy(list(lookups)))


def has_digit(message) -> bool:
    return any(token.isdigit() for token in message.get("text").split())


def attempt(config, archive, training_data, work: Path) -> tuple[str | None, str]:
    from nlu_mlflow.rasa import finetune, training

    work.mkdir(parents=True)
    path = work / "train.yml"
    path.write_text(training_data.nlu_as_yaml(), encoding="utf-8")
    predicted = finetune.finetune_problem(archive, config, finetune.config_digest(config), path, version="1")
    try:
        training.train(config, path, work, finetune_from=archive, epoch_fraction=0.5)
        return predicted, "absorbed"
    except Exception as error:  # Rasa's graph wraps the component's error
        while error.__cause__ is not None:
            error = error.__cause__
        return predicted, f"refused: {type(error).__name__}: {str(error)[:160]}"


def main() -> None:
    from nlu_mlflow.rasa import pipelines, training
    from nlu_mlflow.rasa.data import load_nlu

    runtime.quiet_rasa()
    train = load_nlu(ROOT / "data" / "pizza" / "train.yml").training_data
    test = load_nlu(ROOT / "data" / "pizza" / "test.yml").training_data
    diet = pipelines.load(ROOT / "configs" / "diet.yml", epochs=2, seed=42)
    shared = copy.deepcopy(diet)
    shared.pipeline[3]["use_shared_vocab"] = True
    oov = copy.deepcopy(diet)
    oov.pipeline[3].update({"OOV_token": "__oov__", "OOV_words": ["pls"]})
    shout = {"text": "I want a LARGE pizza NOW", "intent": "purchase"}
    grown_lookup = [{"name": "topping", "elements": [*LOOKUP[0]["elements"], "anchovies", "jalapenos"]}]
    bases = {
        "plain": (diet, data(train)),
        "regexes": (oov, data(train, regexes=REGEXES[:1], lookups=LOOKUP)),
        "shared": (shared, data(train)),
    }
    cases = [
        ("plain", "two regexes and a lookup table appear (issue 27)", data(train, test, REGEXES, LOOKUP)),
        ("plain", "one regex appears", data(train, test, REGEXES[:1])),
        ("plain", "new words and char n-grams (train + test)", data(train, test)),
        ("plain", "examples with a digit token removed", data(train, test, drop=has_digit)),
        ("plain", "an upper-case word appears", data(train, test, extra=[shout])),
        ("plain", "a new intent", data(train, extra=[{"text": "tell me a joke", "intent": "joke"}])),
        ("regexes", "a second regex added (new name)", data(train, test, REGEXES, LOOKUP)),
        ("regexes", "the lookup table grows", data(train, test, REGEXES[:1], grown_lookup)),
        ("regexes", "regexes and lookup table removed", data(train, test)),
        ("regexes", "new words with OOV_token set", data(train, test, REGEXES[:1], LOOKUP)),
        ("shared", "new words, use_shared_vocab: true", data(train, test)),
    ]
    with tempfile.TemporaryDirectory(prefix="finetune-changes-") as tmp:
        archives = {}
        for name, (config, training_data) in bases.items():
            path = Path(tmp) / name / "train.yml"
            path.parent.mkdir()
            path.write_text(training_data.nlu_as_yaml(), encoding="utf-8")
            archives[name] = training.train(config, path, path.parent).archive
        for i, (base, change, training_data) in enumerate(cases):
            started = time.perf_counter()
            predicted, rasa = attempt(bases[base][0], archives[base], training_data, Path(tmp) / f"case{i}")
            print(f"[{base}] {change}\n  Rasa:      {rasa}\n  predicted: {predicted}\n"
                  f"  ({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
