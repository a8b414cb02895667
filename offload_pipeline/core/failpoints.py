"""Named crash points for fault-injection tests.

``OFFLOAD_FAILPOINT=<name>`` makes the process SIGKILL itself the first time it reaches the point
``<name>``; ``<name>@<n>`` the n-th time; ``<name>+<ms>`` kills it ``ms`` milliseconds *after*
reaching the point, from a timer, so the kill lands in the middle of whatever follows (file writes);
``<name>~<ms>`` only sleeps there, to hold two processes in a race window; ``<name>!`` raises
``FailpointError`` there, a bug the code does not expect.
Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

ENV = "OFFLOAD_FAILPOINT"
_SPEC = re.compile(
    r"^(?P<name>[\w.]+)(?:@(?P<nth>\d+))?(?:\+(?P<delay>\d+)|~(?P<sleep>\d+)|(?P<raise>!))?$"
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
    delay = match.group("delay")
    if delay is None:
        _kill()
    timer = threading.Timer(int(delay) / 1000, _kill)
    timer.daemon = True
    timer.start()


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
