"""Named crash points for fault-injection tests.

``OFFLOAD_FAILPOINT=<name>`` makes the process SIGKILL itself the first time it reaches the point
``<name>``; ``<name>@<n>`` the n-th time; ``<name>+<ms>`` kills it ``ms`` milliseconds *after*
reaching the point, from a timer, so the kill lands in the middle of whatever follows (file writes);
``<name>~<ms>`` only sleeps there, to hold two processes in a race window; ``<name>^<n>`` waits
there until ``n`` processes have reached it (a rendezvous through files in
``$OFFLOAD_FAILPOINT_DIR``), so racing writers start from the same state however late each
process started; ``<name>!`` raises ``FailpointError`` there, a bug the code does not expect.
Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

ENV = "OFFLOAD_FAILPOINT"
RENDEZVOUS_DIR_ENV = "OFFLOAD_FAILPOINT_DIR"
RENDEZVOUS_TIMEOUT_S = 120
_SPEC = re.compile(
    r"^(?P<name>[\w.]+)(?:@(?P<nth>\d+))?"
    r"(?:\+(?P<delay>\d+)|~(?P<sleep>\d+)|\^(?P<meet>\d+)|(?P<raise>!))?$"
)
_hits: dict[str, int] = {}


class FailpointError(RuntimeError):
    """Raised at a failpoint asked to raise: stands for an unexpected bug (not an OffloadError)."""


def failpoint(name: str) -> None:
    """Die here if the environment asks for it (tests only)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    match = _SPEC.match(spec)
    if not match or match.group("name") != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != int(match.group("nth") or 1):
        return
    if match.group("raise"):
        raise FailpointError(f"failpoint {name} raised")
    if match.group("sleep"):
        time.sleep(int(match.group("sleep")) / 1000)
        return
    if match.group("meet"):
        _rendezvous(name, int(match.group("meet")))
        return
    delay = match.group("delay")
    if delay is None:
        _kill()
    timer = threading.Timer(int(delay) / 1000, _kill)
    timer.daemon = True
    timer.start()


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _rendezvous(name: str, parties: int) -> None:
    """Mark this process as arrived at ``name`` and wait until ``parties`` processes have."""
    directory = Path(os.environ[RENDEZVOUS_DIR_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.{os.getpid()}").touch()
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
    while len(list(directory.glob(f"{name}.*"))) < parties:
        if time.monotonic() > deadline:
            raise FailpointError(f"failpoint {name}: {parties} processes never met")
        time.sleep(0.02)
