"""One workflow at a time: an advisory file lock held for the whole run (cron overlap guard).

``filelock`` takes the operating system's lock on the file, which the kernel drops when the process ends,
however it ends, so a crash leaves no stale lock. While held, the file names its holder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

DEFAULT_LOCK_FILE = ".nlu-mlflow.lock"


class LockedError(RuntimeError):
    """Another run holds the lock."""


def _name_holder(fd: int) -> None:
    """Written into the lock file once the lock is ours (filelock has emptied it)."""
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    os.write(fd, f"pid {os.getpid()} since {since}".encode())


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock at ``path`` for the block; ``LockedError`` at once when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0, preserve_lock_file=True, on_acquired=_name_holder)
    try:
        lock.acquire()
    except Timeout:
        holder = path.read_text().strip() or "another process"
        raise LockedError(
            f"{path}: another nlu-mlflow run is in progress ({holder}); this run stops without doing "
            "anything, try again when it has finished."
        ) from None
    try:
        yield
    finally:
        path.write_text("")  # still held: nobody reads a holder that has gone
        lock.release()
