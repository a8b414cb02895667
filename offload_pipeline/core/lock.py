"""One writer per table on this host: an OS file lock that dies with its holder.

Dagster's pools serialize runs it schedules, but a SIGKILLed in-process run keeps its pool slot;
an ``flock`` is released by the kernel the moment its process dies, so it can never go stale.
Writers on other hosts are still stopped by the Iceberg commit check.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from offload_pipeline.core import cancel
from offload_pipeline.errors import CommitConflictError, ConfigInvalidError


@contextmanager
def table_lock(lock_dir: Path, table: str, timeout_s: float) -> Iterator[None]:
    """Hold the writer lock of ``table``, waiting up to ``timeout_s`` for the current holder (a
    stop request ends the wait).

    Raises:
        ConfigInvalidError: the lock file cannot be created under ``lock_dir``.
        CommitConflictError: another writer held the lock for longer than ``timeout_s``.
    """
    path = lock_dir / f"{table}.lock"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        # e.g. lock_dir is a file: waiting and retrying cannot change that
        raise ConfigInvalidError(
            f"table '{table}': run.lock_dir: cannot create the lock file {path}: {e.strerror}"
        ) from e
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                cancel.check(table)
                if time.monotonic() >= deadline:
                    holder = path.read_text().strip() or "unknown"
                    raise CommitConflictError(
                        f"table '{table}': another writer (pid {holder}) held the table lock "
                        f"for more than {timeout_s:g} s"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
