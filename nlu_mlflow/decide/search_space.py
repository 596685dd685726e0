"""The ``search:`` section of a pipeline config: Optuna-style distributions for component options.

A key names one option of one pipeline component, ``Component.option`` or ``Component.N.option`` where ``N``
is the 0-based position among the components of that name
(``CountVectorsFeaturizer.1.max_ngram`` is the second
CountVectorsFeaturizer). A value is ``{int: [low, high]}``, ``{float: [low, high]}`` (both may add
``log: true``) or ``{choice: [a, b, ...]}``. Every problem is an input error found before any training.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast, overload

from nlu_mlflow.errors import InputError

KINDS = ("int", "float", "choice")


@dataclass(frozen=True)
class Dimension:
    """One searched option: the component (its index in ``pipeline``), the option and its distribution."""

    name: str
    component: int
    option: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = field(default_factory=tuple)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of an "int" or "float" dimension."""
        assert self.low is not None and self.high is not None, f"{self.name}: a choice has no range"
        return self.low, self.high


def parse(path: Path | str, search: object, pipeline: list[dict]) -> list[Dimension]:
    """The dimensions of ``search`` (a config's ``search:``) against its ``pipeline``; raises InputError."""
    if search is None:
        return []
    if not isinstance(search, dict) or not search:
        raise InputError(
            f"{path}: `search` must be a mapping of `Component.option: {{int: [low, high]}}`; fix it."
        )
    dimensions, problems = [], []
    for name, spec in search.items():
        try:
            dimensions.append(_dimension(path, str(name), spec, pipeline))
        except InputError as error:
            problems += error.problems
    if problems:
        raise InputError(problems)
    return dimensions


def _dimension(path: Path | str, name: str, spec: object, pipeline: list[dict]) -> Dimension:
    component, option = _target(path, name, pipeline)
    where = f"{path}: search `{name}`"
    if not isinstance(spec, dict) or len(set(spec) & set(KINDS)) != 1 or set(spec) - {*KINDS, "log"}:
        raise InputError(
            f"{where} must be one of {{int: [low, high]}}, {{float: [low, high]}}, {{choice: [...]}}."
        )
    kind = next(k for k in KINDS if k in spec)
    log = spec.get("log", False)
    if not isinstance(log, bool) or (log and kind == "choice"):
        raise InputError(
            f"{where}: `log` must be true or false and only with int or float; fix or remove it."
        )
    if kind == "choice":
        choices = spec["choice"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise InputError(f"{where}: `choice` must list at least two values; add them.")
        return Dimension(name, component, option, kind, choices=tuple(choices))
    low, high = _range(where, kind, spec[kind])
    if log and low <= 0:
        raise InputError(f"{where}: a log range needs low > 0 (got {low}); raise low or drop `log`.")
    return Dimension(name, component, option, kind, low, high, log)


def _range(where: str, kind: str, bounds: object) -> tuple[float, float]:
    number = int if kind == "int" else (int, float)
    if kind == "float" and isinstance(bounds, list):  # YAML 1.1 (PyYAML) reads 1e-4 as a string
        bounds = [_float(b) for b in bounds]
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    ):
        raise InputError(f"{where}: `{kind}` must be [low, high] with {kind} numbers; fix the range.")
    low, high = cast("tuple[float, float]", tuple(bounds))
    if low >= high:
        raise InputError(f"{where}: low {low} is not below high {high}; swap or widen the range.")
    return low, high


def _float(value: object) -> object:
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _target(path: Path | str, name: str, pipeline: list[dict]) -> tuple[int, str]:
    parts = name.split(".")
    if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[1].isdigit()) or not all(parts):
        raise InputError(
            f"{path}: search `{name}` must be `Component.option` or `Component.N.option`; rename it."
        )
    component, option = parts[0], parts[-1]
    positions = [
        i for i, step in enumerate(pipeline) if isinstance(step, dict) and step.get("name") == component
    ]
    if not positions:
        raise InputError(
            f"{path}: search `{name}` names {component}, which is not in the pipeline; fix the name."
        )
    if len(parts) == 2 and len(positions) > 1:
        raise InputError(
            f"{path}: search `{name}` is ambiguous ({len(positions)} {component}s); "
            f"write `{component}.N.{option}`."
        )
    number = int(parts[1]) if len(parts) == 3 else 0
    if number >= len(positions):
        raise InputError(
            f"{path}: search `{name}` asks for {component} number {number} but the pipeline has "
            f"{len(positions)} (0-based); fix the number."
        )
    if option == "name":
        raise InputError(
            f"{path}: search `{name}` cannot change a component's name; search an option instead."
        )
    return positions[number], option


def apply(pipeline: list[dict], dimensions: list[Dimension], values: dict[str, object]) -> list[dict]:
    """A copy of ``pipeline`` with each dimension's option set to ``values[name]``."""
    result = copy.deepcopy(pipeline)
    for dimension in dimensions:
        result[dimension.component][dimension.option] = values[dimension.name]
    return result


def capped(dimensions: list[Dimension], cap: int | None) -> list[Dimension]:
    """``dimensions`` where a searched ``epochs`` never exceeds ``cap`` (``--epochs``), like the config."""
    if not cap:
        return list(dimensions)
    return [_capped(d, cap) if d.option == "epochs" else d for d in dimensions]


def _capped(dimension: Dimension, cap: int) -> Dimension:
    if dimension.kind == "choice":
        choices = tuple(
            dict.fromkeys(min(v, cap) if isinstance(v, int | float) else v for v in dimension.choices)
        )
        return replace(dimension, choices=choices)
    low, high = dimension.bounds
    return replace(dimension, low=min(low, cap), high=min(high, cap))


def contains(dimension: Dimension, value: object) -> bool:
    """Whether ``value`` is one the dimension can take (a config's own value, to try it first)."""
    if dimension.kind == "choice":
        return value in dimension.choices
    number = int if dimension.kind == "int" else (int, float)
    if not isinstance(value, number) or isinstance(value, bool):
        return False
    low, high = dimension.bounds
    return low <= value <= high


def largest(dimensions: list[Dimension], option: str) -> float | None:
    """The largest value any dimension of ``option`` can take (None when none searches it)."""
    tops = [max(d.choices) if d.kind == "choice" else d.bounds[1] for d in dimensions if d.option == option]
    return max(tops) if tops else None


def records(dimensions: list[Dimension]) -> list[dict]:
    """The search space as plain records (logged as ``search/space.json``)."""
    return [asdict(d) | {"choices": list(d.choices)} for d in dimensions]


# --- budgets for successive halving: few epochs first, the best third gets three times more ---
REDUCTION_FACTOR = 3


def min_epochs(top: int) -> int:
    """The first rung's epochs for a study whose trials train at most ``top`` epochs: about three rungs."""
    return max(1, math.ceil(top / REDUCTION_FACTOR**2))


@overload
def rungs(full: int, first: int | None) -> list[int]: ...
@overload
def rungs(full: int | None, first: int | None) -> list[int | None]: ...
def rungs(full: int | None, first: int | None) -> list[int | None] | list[int]:
    """Epochs at which a trial of ``full`` epochs is scored: ``first * 3**k`` below ``full``, then ``full``.

    ``[full]`` alone without pruning (``first`` None) or for a pipeline without epochs (``full`` None).
    """
    if not full or not first:
        return [full]
    steps = []
    while first * REDUCTION_FACTOR ** len(steps) < full:
        steps.append(first * REDUCTION_FACTOR ** len(steps))
    return [*steps, full]


def section(dimensions: list[Dimension]) -> dict:
    """The ``search:`` section that ``parse`` reads back as ``dimensions`` (a study stores its config so)."""
    result = {}
    for d in dimensions:
        if d.kind == "choice":
            result[d.name] = {"choice": list(d.choices)}
        else:
            result[d.name] = {d.kind: [d.low, d.high], **({"log": True} if d.log else {})}
    return result
