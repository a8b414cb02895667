"""What SIGINT and SIGTERM do to the verbs that write tables (``run``, ``maintain``, ``backfill``).

The first signal asks the core to stop at its next safe point (``core/cancel.py``): the chunk being
written is committed whole or not at all, the table's stopped step fails as ``run_failure`` and is
never retried, and the verb exits ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from offload_pipeline.core import cancel

log = logging.getLogger(__name__)

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 5.0
"""how long a stopped verb may take to reach a safe point before the process ends at once"""


def run_stoppable(work: Callable[[], T], abandon: Callable[[], object] = lambda: None) -> T:
    """Run ``work`` so that SIGINT and SIGTERM stop it at the core's next safe point.

    ``work`` runs in a worker thread: signals are delivered to the main thread only, so Dagster's
    own interrupt handling (an interrupted step is retried after its delay) never sees them. A
    second signal, or ``work`` still busy ``GRACE_SECONDS`` after the first (waiting out a retry
    delay or a pool slot), ends the process at once after ``abandon`` has recorded what it can; a
    commit in flight is then lost whole, as after a kill.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(e)

    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        cancel.request(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        worker = threading.Thread(target=target, name="offload-verb", daemon=True)
        worker.start()
        stop_by: float | None = None
        while worker.is_alive():
            worker.join(0.1)
            if received and stop_by is None:
                stop_by = time.monotonic() + GRACE_SECONDS
                log.warning("%s: stopping at the next safe point", cancel.requested())
            late = stop_by is not None and time.monotonic() > stop_by
            if worker.is_alive() and (len(received) > 1 or late):
                _end_now(abandon)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise failure[0]
    return outcome[0]


def stopped_exit_code() -> int | None:
    """``128 + signal number`` once a signal asked this process to stop, else None."""
    reason = cancel.requested()
    if reason is None or reason not in signal.Signals.__members__:
        return None
    return 128 + signal.Signals[reason].value


def _end_now(abandon: Callable[[], object]) -> None:
    """Leave without waiting for the worker: record what can be recorded, then exit."""
    log.error("%s: no safe point reached in time; ending the process now", cancel.requested())
    try:
        abandon()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # the worker may hold locks the interpreter's shutdown would wait on
        os._exit(stopped_exit_code() or 1)
