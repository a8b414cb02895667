"""Pushes to the Pushgateway: one grouping key per table, POST only, short timeouts, never raises.

POST (``pushadd``) replaces only the metric families it carries, so the hooks' gauges and the
sensor's counters share a table's group without erasing each other. Every group carries the
deployment's ``pipeline`` label, so deployments sharing a Pushgateway never touch each other's
groups. A failed push is logged and reported as False: metrics must never fail or stall an offload.
Pushes of one tick or run share one ``PushBudget`` (``budget.py``), so a Pushgateway that never
answers costs seconds per cycle; a tick's table pushes run on a few threads (``TablePushes``).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, delete_from_gateway, pushadd_to_gateway
from prometheus_client.core import Metric
from prometheus_client.exposition import default_handler

from offload_pipeline.config import DEFAULT_PIPELINE
from offload_pipeline.metrics.budget import PushBudget
from offload_pipeline.metrics.collect import registry_of
from offload_pipeline.metrics.contract import JOB

log = logging.getLogger(__name__)

Handler = Callable[..., Callable[[], None]]


def group_key(pipeline: str, table: str | None = None) -> dict[str, str]:
    """Grouping key of the pipeline-wide group, or of ``table``'s group (``job`` is added by the
    client)."""
    return {"pipeline": pipeline} if table is None else {"pipeline": pipeline, "table": table}


def push_table(
    url: str,
    pipeline: str,
    table: str,
    families: Iterable[Metric],
    handler: Handler = default_handler,
    budget: PushBudget | None = None,
) -> bool:
    """Replace ``families`` in the table's group ``{job, pipeline, table}``."""
    return _push("POST", url, group_key(pipeline, table), registry_of(families), handler, budget)


PUSH_THREADS = 2
"""table pushes in flight at once: one on the wire while the Pushgateway applies another. It
applies them one at a time, checking each against every group it holds, so more would only queue
there and time out together"""


class TablePushes:
    """The table pushes of one tick, sent on a few threads while the tick goes on measuring.

    The first push runs in the caller's thread and the others only after it: a Pushgateway that
    never answers is found by one connection, and the budget then skips the rest unopened.
    """

    def __init__(
        self, url: str, pipeline: str, budget: PushBudget, threads: int = PUSH_THREADS
    ) -> None:
        self.url, self.pipeline, self.budget = url, pipeline, budget
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="metrics-push")
        self._pushes: list[bool | Future[bool]] = []

    def push(self, table: str, families: Iterable[Metric]) -> None:
        """Queue ``push_table`` of ``families`` (the first one is sent at once)."""
        args = (self.url, self.pipeline, table, list(families))
        if self._pushes:
            self._pushes.append(self._pool.submit(push_table, *args, budget=self.budget))
        else:
            self._pushes.append(push_table(*args, budget=self.budget))

    def results(self) -> list[bool]:
        """Whether each push succeeded, in the order queued (waits for those in flight)."""
        self._pool.shutdown(wait=True)
        return [p if isinstance(p, bool) else p.result() for p in self._pushes]

    def __enter__(self) -> TablePushes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=error is not None)


def push_pipeline(
    url: str,
    pipeline: str,
    families: Iterable[Metric],
    handler: Handler = default_handler,
    budget: PushBudget | None = None,
) -> bool:
    """Replace ``families`` in the pipeline-wide group ``{job, pipeline}``."""
    return _push("POST", url, group_key(pipeline), registry_of(families), handler, budget)


def delete_group(
    url: str,
    key: dict[str, str],
    handler: Handler = default_handler,
    budget: PushBudget | None = None,
) -> bool:
    """Delete one group of this job (a key from ``group_key`` or ``stale_groups``)."""
    return _push("DELETE", url, key, None, handler, budget)


def stale_groups(
    url: str, pipeline: str, tables: Iterable[str], budget: PushBudget | None = None
) -> list[dict[str, str]] | None:
    """Grouping keys of ``pipeline``'s table groups whose table is not in ``tables`` (None if the
    Pushgateway cannot be asked).

    Groups of other pipelines are never returned. The default pipeline also owns the groups
    pushed before groups carried a ``pipeline`` label: they would otherwise stay forever, beside
    their labelled successors.
    """
    budget = budget or PushBudget()
    timeout = budget.timeout(url)
    if timeout is None:
        return None
    try:
        with (
            budget.spending(url),
            urllib.request.urlopen(f"{url}/api/v1/metrics", timeout=timeout) as r,
        ):
            groups = json.load(r)["data"]
    except Exception as e:  # noqa: BLE001 - any failure means "unknown", logged
        log.warning("cannot list Pushgateway groups at %s: %s", url, e)
        return None
    configured = set(tables)
    stale = []
    for group in groups:
        labels: dict[str, Any] = group.get("labels", {})
        if labels.get("job") != JOB:
            continue
        key = {k: str(v) for k, v in labels.items() if k != "job"}
        if "pipeline" not in key:
            if pipeline == DEFAULT_PIPELINE:
                stale.append(key)  # unlabelled: pushed by an earlier version of the default
        elif key["pipeline"] == pipeline and key.get("table", "") not in configured | {""}:
            stale.append(key)
    return sorted(stale, key=lambda k: sorted(k.items()))


def _push(
    method: str,
    url: str,
    grouping_key: dict[str, str],
    registry: CollectorRegistry | None,
    handler: Handler,
    budget: PushBudget | None,
) -> bool:
    if not url:
        return False
    budget = budget or PushBudget()
    timeout = budget.timeout(url)
    if timeout is None:
        return False
    try:
        with budget.spending(url):
            if method == "DELETE":
                delete_from_gateway(
                    url, job=JOB, grouping_key=grouping_key, timeout=timeout, handler=handler
                )
            else:
                pushadd_to_gateway(
                    url,
                    job=JOB,
                    registry=registry,
                    grouping_key=grouping_key,
                    timeout=timeout,
                    handler=handler,
                )
    except Exception as e:  # noqa: BLE001 - a metrics outage must never fail an offload
        log.warning("metrics push (%s %s) to %s failed: %s", method, grouping_key, url, e)
        return False
    return True
