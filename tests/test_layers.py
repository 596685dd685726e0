"""The package's layers and their import rules (README "Architecture"), checked on the source with ``ast``.

decide/ is pure; rasa/ is the only importer of rasa and TensorFlow; tracking/ the only importer of mlflow;
workflow/ the only importer of optuna (the hyperparameter search, workflow/tune.py);
the layers import only downwards; nothing imports cli/; no function is longer than 60 lines.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "nlu_mlflow"
LAYERS = ("decide", "rasa", "tracking", "live", "workflow", "receiver", "cli")
SHARED = {"nlu_mlflow.constants", "nlu_mlflow.errors", "nlu_mlflow.console"}  # what every layer may use
PURE_THIRD_PARTY = {"pandas", "numpy", "scipy", "orjson"}  # orjson: a JSON parser, no I/O
# what each layer may import from the package, besides itself and the shared modules
ALLOWED = {
    "decide": set(),
    "rasa": {"decide"},
    "tracking": {"decide", "rasa"},
    "live": {"decide"},  # the live side's adapters: tracker-store reader, inbox store, annotation tool client
    "workflow": {"decide", "rasa", "tracking", "live"},
    "receiver": {"decide", "rasa", "tracking"},
    "cli": {"decide", "rasa", "tracking", "live", "workflow", "receiver"},
}
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a module, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "nlu_mlflow":  # from nlu_mlflow import x
            found += [(node.lineno, f"nlu_mlflow.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
    return found


def package_layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "nlu_mlflow" and parts[1] in LAYERS else None


def violations(path: Path) -> list[str]:
    layer, where = layer_of(path), path.relative_to(ROOT)
    problems = []
    for line, name in imported(path):
        top, target = name.split(".")[0], package_layer(name)
        if top in ("rasa", "tensorflow") and layer != "rasa":
            problems.append(f"{where}:{line} imports {name}: only nlu_mlflow/rasa/ may import {top}")
        if top == "mlflow" and layer != "tracking":
            problems.append(f"{where}:{line} imports {name}: only nlu_mlflow/tracking/ may import mlflow")
        if top == "sqlalchemy" and layer != "live":
            problems.append(f"{where}:{line} imports {name}: only nlu_mlflow/live/ may import sqlalchemy")
        if top == "optuna" and layer != "workflow":
            problems.append(f"{where}:{line} imports {name}: only nlu_mlflow/workflow/ may import optuna")
        if target == "cli" and layer != "cli":
            problems.append(f"{where}:{line} imports {name}: nothing imports the cli/ layer")
        if layer and target and target != layer and target not in ALLOWED[layer]:
            problems.append(f"{where}:{line} imports {name}: {layer}/ may not import {target}/")
        if layer == "decide" and not _pure(name):
            pure = ", ".join(sorted(PURE_THIRD_PARTY))
            problems.append(f"{where}:{line} imports {name}: decide/ takes only stdlib, {pure}")
        if layer is None and top == "nlu_mlflow" and path.name != "__init__.py" and name not in SHARED:
            problems.append(f"{where}:{line} imports {name}: the shared modules import no layer")
    return problems


def _pure(name: str) -> bool:
    top = name.split(".")[0]
    if top == "nlu_mlflow":
        return name in SHARED or package_layer(name) == "decide"
    return top in sys.stdlib_module_names or top in PURE_THIRD_PARTY or top == "__future__"


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_every_module_lives_in_a_layer_folder():
    loose = {p.name for p in PACKAGE.glob("*.py")} - {
        "__init__.py",
        "constants.py",
        "errors.py",
        "console.py",
    }
    assert loose == set()
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_imports_follow_the_layer_rules():
    problems = [p for path in modules() for p in violations(path)]
    assert problems == []


def test_no_function_is_longer_than_sixty_lines():
    assert [p for path in modules() for p in long_functions(path)] == []


@pytest.mark.parametrize(
    "layer, source, broken",
    [
        ("decide", "import mlflow\n", "only nlu_mlflow/tracking/ may import mlflow"),
        ("decide", "import requests\n", "decide/ takes only stdlib"),
        ("decide", "from nlu_mlflow.rasa import data\n", "decide/ may not import rasa/"),
        ("workflow", "import rasa.core\n", "only nlu_mlflow/rasa/ may import rasa"),
        ("rasa", "from nlu_mlflow.tracking import runs\n", "rasa/ may not import tracking/"),
        ("tracking", "import optuna\n", "only nlu_mlflow/workflow/ may import optuna"),
        ("workflow", "import sqlalchemy as sa\n", "only nlu_mlflow/live/ may import sqlalchemy"),
        ("live", "from nlu_mlflow.workflow import inbox\n", "live/ may not import workflow/"),
        ("cli", "from optuna.trial import TrialState\n", "only nlu_mlflow/workflow/ may import optuna"),
        ("receiver", "from nlu_mlflow.cli import app\n", "nothing imports the cli/ layer"),
        (
            "tracking",
            "def f():\n    from nlu_mlflow.workflow import run\n",
            "tracking/ may not import workflow/",
        ),
    ],
)
def test_the_rules_catch_a_broken_import(tmp_path, monkeypatch, layer, source, broken):
    """The checker itself: a module that breaks a rule is reported (it would pass if the walker saw nothing)."""
    fake_package = tmp_path / "nlu_mlflow"
    (fake_package / layer).mkdir(parents=True)
    module = fake_package / layer / "bad.py"
    module.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake_package)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert any(broken in p for p in violations(module))


def test_a_long_function_is_reported(tmp_path, monkeypatch):
    module = tmp_path / "long.py"
    module.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert long_functions(module) == [f"long.py:1 f has {MAX_FUNCTION_LINES + 1} lines"]
