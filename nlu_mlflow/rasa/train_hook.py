"""One hook into Rasa's training loop: each epoch of DIET, the ResponseSelector and TED reaches our listeners.

Rasa 3.6 builds the Keras callbacks of all three in one place,
``rasa.utils.train_utils.create_common_callbacks`` (called from ``DIETClassifier.train``, which the
ResponseSelector inherits, and ``TEDPolicy.run_training``). While ``watching(listener, ...)`` is open, that
function is replaced by one that adds a ``_Relay`` callback to Rasa's list: at the end of each epoch it hands
every listener an ``EpochEnd`` (the component, epoch i of N, Rasa's own per-epoch metrics such as ``t_loss``
and ``i_acc``, the seconds since training began) and a ``TrainingContext`` (the component being trained and
the graph runner training it, for the search's in-training scoring, ``rung_scores``). Three listeners use it:
the progress line (``progress``), the training curves on the candidate's MLflow run (``tracking.curves``) and
the search's rung scores.

Rasa internals used (listed with the others in ``internals``): ``create_common_callbacks`` as a module
attribute looked up at call time, the caller's ``self`` (the component) one frame up, and the
``DaskGraphRunner`` further up the stack (``_instantiated_nodes``, ``_graph_schema``). On a Rasa other than
``internals.RASA_VERSION`` the hook stands aside: training runs as Rasa's, without progress, curves or
in-training scores.

A listener that raises ``StopTraining`` ends the training there (the search's trial was pruned or scored for
the last time; Rasa writes no archive); any other error of a listener is logged once and that listener is
dropped: a listener never fails a training.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nlu_mlflow.rasa import internals

logger = logging.getLogger("nlu_mlflow")

PATCHED = "rasa.utils.train_utils.create_common_callbacks"
STACK_DEPTH = 80  # frames searched upwards for the graph runner

_lock = threading.RLock()
_listeners: list = []  # while watching(): the open blocks' listeners, in order
_rasa_create = None  # Rasa's create_common_callbacks while replaced


@dataclass(frozen=True)
class EpochEnd:
    component: str  # the class being trained: DIETClassifier, ResponseSelector, TEDPolicy
    epoch: int  # 1-based
    epochs: int
    logs: dict[str, float]  # Rasa's per-epoch metrics (t_loss, i_acc, e_f1, ...)
    seconds: float  # since this component's training began
    first_epoch_seconds: float  # the first epoch alone (it traces the graph, so it is the slowest)

    @property
    def eta_seconds(self) -> float:
        """Time left at the pace of the epochs after the first (the first includes tracing)."""
        left = self.epochs - self.epoch
        if self.epoch > 1:
            return (self.seconds - self.first_epoch_seconds) / (self.epoch - 1) * left
        return self.seconds * left


@dataclass(frozen=True)
class TrainingContext:
    """The component Rasa is training and the graph runner it runs in (None if not found)."""

    component: object
    runner: object | None


class StopTraining(Exception):
    """Raised by a listener to end the training after ``epoch``; nothing more is trained or written."""

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"training stopped after epoch {epoch}: {reason}")
        self.epoch = epoch


class Listener:
    """What the hook calls; override what you need."""

    def on_epoch(self, event: EpochEnd, context: TrainingContext) -> None:
        pass

    def on_end(self, component: str) -> None:
        pass


@contextmanager
def watching(*listeners: Listener) -> Iterator[bool]:
    """Within the block every epoch of DIET, ResponseSelector and TED reaches ``listeners``; yields whether
    the hook is active (False on a Rasa the hook was not verified against)."""
    if not listeners or not internals.verified():
        yield False
        return
    with _lock:
        _install()
        _listeners.extend(listeners)
    try:
        yield True
    finally:
        with _lock:
            for listener in listeners:
                _listeners.remove(listener)
            if not _listeners:
                _uninstall()


def stopped_by(error: BaseException) -> StopTraining | None:
    """The ``StopTraining`` behind ``error`` (Rasa wraps a component's error in its own), if any."""
    seen = error
    while seen is not None:
        if isinstance(seen, StopTraining):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _install() -> None:
    global _rasa_create
    if _rasa_create is None:
        import rasa.utils.train_utils as train_utils

        _rasa_create = train_utils.create_common_callbacks
        train_utils.create_common_callbacks = _create_common_callbacks


def _uninstall() -> None:
    global _rasa_create
    if _rasa_create is not None:
        import rasa.utils.train_utils as train_utils

        train_utils.create_common_callbacks = _rasa_create
        _rasa_create = None


def _create_common_callbacks(epochs, *args, **kwargs) -> list:
    """Rasa's callbacks plus the relay to our listeners (``epochs`` is the component's configured epochs)."""
    callbacks = _rasa_create(epochs, *args, **kwargs)
    caller = sys._getframe(1).f_locals.get("self")  # DIETClassifier.train / TEDPolicy.run_training
    with _lock:
        listeners = list(_listeners)
    context = TrainingContext(caller, _graph_runner(sys._getframe(1)))
    return [*callbacks, _relay_class()(epochs, context, listeners)]


def _graph_runner(frame) -> object | None:
    """The DaskGraphRunner whose ``run`` is on the stack above ``frame`` (it runs the training graph)."""
    from rasa.engine.runner.dask import DaskGraphRunner

    for _ in range(STACK_DEPTH):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, DaskGraphRunner):
            return owner
        frame = frame.f_back
    return None


def _relay_class() -> type:
    import tensorflow as tf

    class _Relay(tf.keras.callbacks.Callback):
        """Hands each epoch's end to the listeners."""

        def __init__(self, epochs: int, context: TrainingContext, listeners: list) -> None:
            super().__init__()
            self.epochs, self.context, self.listeners = int(epochs), context, listeners
            self.name = type(context.component).__name__
            self.started = self.first = 0.0

        def on_train_begin(self, logs=None) -> None:  # noqa: ARG002
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            seconds = time.perf_counter() - self.started
            self.first = self.first or seconds
            values = {k: float(v) for k, v in (logs or {}).items() if _number(v)}
            event = EpochEnd(self.name, epoch + 1, self.epochs, values, seconds, self.first)
            try:
                _call(self.listeners, "on_epoch", event, self.context)
            except StopTraining:
                _call(self.listeners, "on_end", self.name)  # Keras calls no on_train_end after an error
                raise

        def on_train_end(self, logs=None) -> None:  # noqa: ARG002
            _call(self.listeners, "on_end", self.name)

    return _Relay


def _number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _call(listeners: list, method: str, *args) -> None:
    for listener in list(listeners):
        try:
            getattr(listener, method)(*args)
        except StopTraining:
            raise
        except Exception as error:  # a listener never fails a training
            name, kind = type(listener).__name__, type(error).__name__
            logger.warning("training %s dropped: %s: %s", name, kind, error)
            listeners.remove(listener)


@dataclass
class Recorder(Listener):
    """Keeps every event (tests, and the figures a curve logger could not send)."""

    events: list[EpochEnd] = field(default_factory=list)

    def on_epoch(self, event: EpochEnd, context: TrainingContext) -> None:  # noqa: ARG002
        self.events.append(event)
