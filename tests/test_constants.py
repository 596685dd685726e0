"""Every tag key and metric name lives in nlu_mlflow/constants.py, once, and is used (issue 25).

Read with ``ast`` (nothing imported): the constants' names and values, then every string literal of the package
outside constants.py (docstrings left out); a constant counts as used when the package or a script names it. A literal fails the test when it is
- equal to a tag key or a metric name (the values of the constants below) that is not a plain word ("config"
  is also a file, a field and a folder; a plain word is caught where it is given to a tag or metric call),
- a tag key of our own namespace (``"nlu_mlflow.something"``, module names excepted), or an f-string starting so,
- the key given to a tag or metric call (``set_tag``, ``log_metrics({...})``, ...): the name must be a constant.
"""

from __future__ import annotations

import ast
import collections
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSTANTS = ROOT / "nlu_mlflow" / "constants.py"
PACKAGE = [p for p in sorted((ROOT / "nlu_mlflow").rglob("*.py")) if p != CONSTANTS]
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))  # their JSON reports have field names of their own

# Names that are not tag keys or metric names (prefixes and exact names); every other constant is one of them.
NOT_KEYS = (
    "ROLE_",
    "DECISION_",
    "ALIAS_",
    "ARTIFACT_",
    "DEFAULT_",
    "EVENT_",
    "WEBHOOK_",
    "TRAINING_",
    "MAX_",
    "KEY_METRICS",
    "REPORT_SUMMARY_KEYS",
    "WEIGHTED_AVG",
    "MACRO_AVG",
    "MICRO_AVG",
    "CONVERSATION_ACCURACY_KEY",  # a key inside Rasa's report JSON, read, never logged under this name
    "FINETUNED_SUFFIX",
)
TAG_CALLS = {
    "set_tag",
    "set_tags",
    "set_run_tags",
    "set_version_tags",
    "set_model_version_tag",
    "set_registered_model_tag",
    "tag_version",
    "log_metric",
    "log_metrics",
    "log_metric_at",
    "log_metric_steps",
}
# (file relative to the repository, literal): spelled outside constants.py on purpose, with the reason.
ALLOWED = {
    # Optuna study and trial attributes (not MLflow tags), one place in the module that owns the study.
    ("nlu_mlflow/workflow/tune.py", "nlu_mlflow.spec"): "Optuna attribute",
    ("nlu_mlflow/workflow/tune.py", "nlu_mlflow.default"): "Optuna attribute",
    ("nlu_mlflow/workflow/tune.py", "nlu_mlflow.surplus"): "Optuna attribute",
    ("nlu_mlflow/workflow/tune/study.py", "nlu_mlflow.spec"): "Optuna attribute",  # tune.py split (hook)
    ("nlu_mlflow/workflow/tune/study.py", "nlu_mlflow.default"): "Optuna attribute",
    ("nlu_mlflow/workflow/tune/study.py", "nlu_mlflow.surplus"): "Optuna attribute",
}
NOT_YET_USED: set[str] = set()


def _constants() -> list[tuple[str, object]]:
    tree = ast.parse(CONSTANTS.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value.value if isinstance(node.value, ast.Constant) else None
            found += [(t.id, value) for t in targets if isinstance(t, ast.Name)]
    return found


def _keys() -> dict[str, str]:
    """Value -> name of every tag key and metric name (prefixes included)."""
    return {
        value: name
        for name, value in _constants()
        if isinstance(value, str) and not name.startswith(NOT_KEYS)
    }


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _is_module(text: str) -> bool:
    try:
        return importlib.util.find_spec(text.rstrip(".")) is not None
    except (ImportError, ValueError):
        return False


def _leading(node: ast.AST) -> str | None:
    """The text a literal or an f-string starts with."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def _call_keys(call: ast.Call) -> list[ast.AST]:
    """The key arguments of a tag or metric call: positional ones before the value, keys of dicts given."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name not in TAG_CALLS:
        return []
    keys = [a for a in call.args[:-1] if _leading(a) is not None]
    for node in ast.walk(call):
        if isinstance(node, ast.Dict):
            keys += [k for k in node.keys if k is not None and _leading(k) is not None]
        elif isinstance(node, ast.DictComp) and _leading(node.key) is not None:
            keys.append(node.key)
    return keys


def _violations(where: str, source: str, keys: dict[str, str]) -> list[str]:
    tree = ast.parse(source)
    skip = _docstrings(tree) | {
        id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found |= {(k.lineno, _leading(k), "key of a tag or metric call") for k in _call_keys(node)}
        text = _leading(node)
        if text is None or id(node) in skip:
            continue
        if text in keys and not text.isalpha():
            found.add((node.lineno, text, f"spells c.{keys[text]}"))
        elif text.startswith("nlu_mlflow.") and not _is_module(text):
            found.add((node.lineno, text, "a tag key of ours: put it in constants.py"))
    return [
        f"{where}:{line}: {text!r} ({why})"
        for line, text, why in sorted(found, key=str)
        if (where, text) not in ALLOWED
    ]


def test_no_tag_key_or_metric_name_is_spelled_outside_constants():
    keys = _keys()
    found = [v for p in PACKAGE for v in _violations(p.relative_to(ROOT).as_posix(), p.read_text(), keys)]
    assert found == [], "\n".join(found)


def test_no_constant_is_defined_twice_and_no_key_has_two_names():
    names = collections.Counter(name for name, _ in _constants())
    assert [n for n, k in names.items() if k > 1] == []
    by_value = collections.defaultdict(list)
    for name, value in _constants():
        if isinstance(value, str) and not name.startswith(NOT_KEYS):
            by_value[value].append(name)
    assert {v: n for v, n in by_value.items() if len(n) > 1} == {}


def test_every_constant_is_used():
    used = set()
    for path in [*PACKAGE, *SCRIPTS, CONSTANTS]:
        tree = ast.parse(path.read_text())
        used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        used |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    unused = {name for name, _ in _constants()} - used - NOT_YET_USED
    assert unused == set()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('tags = {"nlu_mlflow.decision": "kept"}', "spells c.TAG_DECISION"),
        ('x = "intent_f1_weighted"', "spells c.INTENT_F1_WEIGHTED"),
        ('mlflow.set_tag("my_own_tag", 1)', "key of a tag or metric call"),
        ('runs.log_metrics({f"search_{n}": 1})', "key of a tag or metric call"),
        ('client.set_tag(run_id, "owner", "me")', "key of a tag or metric call"),
        ('x = f"nlu_mlflow.delta.{name}"', "spells c.TAG_DELTA_PREFIX"),
        ('x = f"nlu_mlflow.new_tag.{name}"', "a tag key of ours"),
        ('x = "nlu_mlflow.new_tag"', "a tag key of ours"),
    ],
)
def test_the_checker_catches(source, expected):
    """The rules above fail on the spellings they are meant for (a checker that cannot fail is a defect)."""
    [found] = _violations("nlu_mlflow/probe.py", source, _keys())
    assert expected in found


def test_a_module_name_and_a_plain_word_are_not_tag_keys():
    assert _is_module("nlu_mlflow.rasa.plot_worker")
    assert not _is_module("nlu_mlflow.last_challenge")
