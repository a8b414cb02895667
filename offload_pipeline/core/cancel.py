"""The process-wide request to stop: set once by a signal handler, checked by the core at its
safe points.

A signal is delivered to the process, not to a table, so the request is one flag per process. The
core checks it only where stopping keeps every table consistent: before waiting for a writer lock,
before planning and before each commit. A chunk being written is then committed whole or not at
all, and nothing after it starts.
"""

from __future__ import annotations

from offload_pipeline.errors import OffloadCancelledError

_reason: str | None = None


def request(reason: str) -> None:
    """Ask every verb in flight in this process to stop at its next safe point."""
    global _reason
    if _reason is None:  # the first request names the stop
        _reason = reason


def requested() -> str | None:
    """Why a stop was requested (e.g. ``SIGTERM``), or None while none was."""
    return _reason


def check(table: str) -> None:
    """Raise ``OffloadCancelledError`` for ``table`` if a stop was requested.

    Raises:
        OffloadCancelledError: a stop was requested; whatever ``table`` committed before stays.
    """
    reason = requested()
    if reason is not None:
        raise OffloadCancelledError(
            f"table '{table}': stopped by {reason}; what was committed before it is kept, "
            "nothing after it was started"
        )


def reset() -> None:
    """Forget a stop request (for a process that runs verbs again after one was stopped)."""
    global _reason
    _reason = None
