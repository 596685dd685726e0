"""The Rasa internals fast loading, batched evaluation and plots use: one list (rasa/internals.py), pinned here.

Only one Rasa can be installed here, so another version is simulated by replacing what
``internals.installed_rasa`` reports; the patched Rasa functions themselves are the real ones.
"""

import ast
import importlib
import inspect
import logging

import pytest
from rasa.utils.tensorflow.models import RasaModel

from nlu_mlflow.rasa import batched, fast_load, internals

from ..helpers import ROOT

USERS = ("fast_load", "batched", "plots", "plot_worker")  # the modules that use Rasa internals
LISTED = {i.path for i in internals.INTERNALS}


def resolve(path: str):
    module, _, name = path.partition(":")
    found = importlib.import_module(module)
    for part in filter(None, name.split(".")):
        if not hasattr(found, part) and inspect.ismodule(found):  # a submodule not imported yet
            importlib.import_module(f"{found.__name__}.{part}")
        found = getattr(found, part)
    return found


def owner(path: str) -> type:
    """The class whose instances carry an internal's attributes: the path itself, or a method's class."""
    found = resolve(path)
    return found if isinstance(found, type) else resolve(path.rpartition(".")[0])


def listed(used: str) -> bool:
    """``used`` (``module:name``) is an internal listed, or the class or module of one."""
    return any(p == used or p.startswith(used if used.endswith(":") else used + ".") for p in LISTED)


@pytest.mark.parametrize("internal", internals.INTERNALS, ids=lambda i: i.path)
def test_each_internal_exists_with_the_signature_listed(internal):
    found = resolve(internal.path)
    if internal.params is not None:
        assert tuple(inspect.signature(found).parameters) == internal.params


def _used(module: str) -> tuple[set[str], set[str]]:
    """``module:name`` of every ``from rasa... import name`` and every private attribute not on ``self``."""
    tree = ast.parse((ROOT / "nlu_mlflow" / "rasa" / f"{module}.py").read_text())
    imports, private = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rasa"):
            imports |= {f"{node.module}:{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imports |= {f"{a.name}:" for a in node.names if a.name.startswith("rasa")}
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            private |= set() if on_self else {node.attr}
    return imports, private


def test_the_list_names_every_rasa_import_and_private_attribute_those_modules_use():
    named = {p.rpartition(".")[2].rpartition(":")[2] for p in LISTED}
    named |= {a for i in internals.INTERNALS for a in i.attributes}
    for module in USERS:
        imports, private = _used(module)
        assert {i for i in imports if not listed(i)} == set(), (
            f"{module}: Rasa imports missing from internals.INTERNALS"
        )
        assert private - named == set(), f"{module}: private Rasa attributes missing from internals.INTERNALS"


@pytest.mark.slow
def test_the_instance_attributes_exist_on_loaded_models(diet_model, logreg_model):
    found = {}
    for model in (diet_model, logreg_model):
        runner = fast_load.load_processor(model.archive).graph_runner
        found[runner] = runner
        for node in runner._instantiated_nodes.values():
            found[node] = node
            found[node._component] = node._component
    by_class = {}
    for obj in found:
        for internal in internals.INTERNALS:
            if internal.attributes and isinstance(obj, owner(internal.path)):
                by_class.setdefault(internal.path, []).append(obj)
    for internal in (i for i in internals.INTERNALS if i.attributes):
        assert by_class.get(internal.path), f"no loaded {internal.path} to check"
        for obj in by_class[internal.path]:
            assert all(hasattr(obj, a) for a in internal.attributes), (internal.path, internal.attributes)


def test_the_installed_rasa_is_the_checked_one_and_gets_the_fast_paths():
    assert internals.installed_rasa() == internals.RASA_VERSION == "3.6.21"
    original = RasaModel.__dict__["load"]
    with fast_load.enabled():
        assert RasaModel.__dict__["load"] is not original


def test_another_rasa_takes_rasas_own_paths_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(internals, "installed_rasa", lambda: "3.7.0")
    monkeypatch.setattr(internals, "_warned", False)
    original = RasaModel.__dict__["load"]
    with caplog.at_level(logging.WARNING, logger="nlu_mlflow"):
        with fast_load.enabled():
            assert RasaModel.__dict__["load"] is original
        assert batched.supports(object()) is False
        assert "3.7.0" in batched.unsupported_reason(object())  # batched inference stands aside too
        assert internals.verified() is False
    warnings = [r.getMessage() for r in caplog.records if "internals checked on Rasa" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("Rasa 3.7.0 is installed")
    assert "Rasa's own slower paths run" in warnings[0]
