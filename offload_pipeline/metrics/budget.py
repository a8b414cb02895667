"""The time budget shared by the pushes of one metrics tick, or of one run's hooks.

A Pushgateway that accepts connections but never answers would otherwise cost the per-push timeout
once per table, in series. Two rules bound it: each push waits at most what is left of the budget
(and never more than ``PUSH_TIMEOUT_SECONDS``), and once a push to a URL failed in transport
(timeout, refused, reset) the budget's later pushes to that URL are skipped, so a dead Pushgateway
costs one timeout per tick or run. A Pushgateway that answered this budget's pushes before is
skipped only after ``FAILURES_AFTER_ANSWERS`` failures in a row: a busy one stalls a push now and
then. Nothing is lost for long: every tick pushes full values again.
Pushes may run on several threads: the budget counts the time at least one of them waits.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.error import HTTPError, URLError

log = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 2.0
BUDGET_SECONDS = 10.0
"""time all pushes of one tick (or one run's hooks) may spend waiting on the Pushgateway"""
FAILURES_AFTER_ANSWERS = 3
"""transport failures in a row that make a URL that answered before unreachable: more than the
pushes a tick has in flight (``push.PUSH_THREADS``), which a stall times out together"""
SECONDS_PER_GROUP = 0.03
"""what each group adds to a tick's budget: the Pushgateway checks every push against all the
groups it holds, so at 1,000 groups one push takes it tens of milliseconds"""
TICK_BUDGET_CAP_SECONDS = 25.0
"""a tick's budget never exceeds this, well below the metrics sensor's 60 s timeout"""


class PushBudget:
    """Time left for pushing, and the URLs found unreachable, within one tick or run.

    >>> budget = PushBudget(seconds=3.0)
    >>> budget.timeout("http://pushgateway:9091")
    2.0
    """

    def __init__(
        self, seconds: float = BUDGET_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._left = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting = 0
        self._waiting_since = 0.0
        self.unreachable: set[str] = set()
        self._failures: dict[str, int] = {}
        """per URL that answered: transport failures since its last answer"""
        self.attempts = 0
        """pushes started (each one connection to the Pushgateway)"""
        self.skipped = 0
        """pushes not started: budget spent or URL unreachable"""

    @property
    def left(self) -> float:
        """Seconds left, the pushes waiting right now charged up to now."""
        with self._lock:
            return self._left - (self.clock() - self._waiting_since if self._waiting else 0.0)

    def timeout(self, url: str) -> float | None:
        """How long the next push to ``url`` may wait; None when it is to be skipped."""
        left = self.left
        with self._lock:
            if url in self.unreachable or left <= 0:
                self.skipped += 1
                skipped = self.skipped
            else:
                self.attempts += 1
                return min(PUSH_TIMEOUT_SECONDS, left)
        why = "unreachable earlier" if url in self.unreachable else "push time budget spent"
        # one warning per budget: a dead Pushgateway must not flood the log once per table
        level = logging.WARNING if skipped == 1 else logging.DEBUG
        log.log(level, "metrics pushes to %s skipped for now (%s)", url, why)
        return None

    @contextmanager
    def spending(self, url: str) -> Iterator[None]:
        """Charge the time of the enclosed push; a transport failure marks ``url`` unreachable
        (unless it answered before: then only the ``FAILURES_AFTER_ANSWERS``-th in a row)."""
        with self._lock:
            if not self._waiting:
                self._waiting_since = self.clock()
            self._waiting += 1
        answered = True
        try:
            yield
        except (TimeoutError, ConnectionError, URLError) as e:
            # an HTTP answer proves the Pushgateway is there
            answered = isinstance(e, HTTPError)
            raise
        finally:
            with self._lock:
                self._waiting -= 1
                if not self._waiting:
                    self._left -= self.clock() - self._waiting_since
                if answered:
                    self._failures[url] = 0
                elif url not in self._failures:
                    self.unreachable.add(url)
                else:
                    self._failures[url] += 1
                    if self._failures[url] >= FAILURES_AFTER_ANSWERS:
                        self.unreachable.add(url)


def tick_budget(groups: int) -> PushBudget:
    """The budget of a tick pushing ``groups`` groups: ``BUDGET_SECONDS``, more for many groups
    (up to ``TICK_BUDGET_CAP_SECONDS``), so a healthy Pushgateway gets every table's group."""
    scaled = groups * SECONDS_PER_GROUP
    return PushBudget(seconds=min(TICK_BUDGET_CAP_SECONDS, max(BUDGET_SECONDS, scaled)))


@functools.lru_cache(maxsize=64)
def run_budget(run_id: str) -> PushBudget:
    """The budget shared by the pushes of every hook and op of run ``run_id`` in this process
    (all of them when the run executes in process); bounded for long-lived processes."""
    return PushBudget()
