"""The one inter-process file lock: an exclusive POSIX ``flock`` on a lock file, for files that
several processes update (ground-truth CSVs, latency tables grown on demand, benchmark run
stores)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def lock_file_for(path: str | os.PathLike[str]) -> Path:
    """The lock file of ``path``: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike[str]) -> Iterator[None]:
    """Holds an exclusive lock on ``lock_file`` (created if missing) for the ``with`` block;
    other processes asking for it wait. Released on exit, also by an exception or the
    process's death."""
    import fcntl  # POSIX; imported here so that importing this module works everywhere

    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
