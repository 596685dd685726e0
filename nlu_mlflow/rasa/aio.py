"""Run one of Rasa's coroutines to completion from synchronous code, also inside a running event loop.

Rasa's parsing and evaluation are coroutines. ``asyncio.run`` cannot start inside a running loop (a Jupyter
notebook, an async server calling the library), so there the coroutine runs in a worker thread with a loop
of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, in a worker thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-mlflow-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()
