"""Pushes to the Pushgateway: one grouping key per table, POST only, short timeouts, never raises.

POST (``pushadd``) replaces only the metric families it carries, so the hooks' gauges and the
sensor's counters share a table's group without erasing each other. A failed push is logged and
reported as False: metrics must never fail or stall an offload. Pushes of one tick or run share
one ``PushBudget`` (``budget.py``), so a Pushgateway that never answers costs seconds per cycle.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, delete_from_gateway, pushadd_to_gateway
from prometheus_client.core import Metric
from prometheus_client.exposition import default_handler

from offload_pipeline.metrics.budget import PushBudget
from offload_pipeline.metrics.collect import registry_of
from offload_pipeline.metrics.contract import JOB

log = logging.getLogger(__name__)

Handler = Callable[..., Callable[[], None]]


def table_key(table: str) -> dict[str, str]:
    """Grouping key of a table's metrics (``job`` is added by the client)."""
    return {"table": table}


def push_table(
    url: str,
    table: str,
    families: Iterable[Metric],
    handler: Handler = default_handler,
    budget: PushBudget | None = None,
) -> bool:
    """Replace ``families`` in the table's group."""
    return _push("POST", url, table_key(table), registry_of(families), handler, budget)


def push_pipeline(
    url: str,
    families: Iterable[Metric],
    handler: Handler = default_handler,
    budget: PushBudget | None = None,
) -> bool:
    """Replace ``families`` in the pipeline-wide group ``{job="iceberg_offload"}``."""
    return _push("POST", url, {}, registry_of(families), handler, budget)


def delete_table(
    url: str, table: str, handler: Handler = default_handler, budget: PushBudget | None = None
) -> bool:
    """Delete the group of a table that is no longer configured."""
    return _push("DELETE", url, table_key(table), None, handler, budget)


def pushed_tables(url: str, budget: PushBudget | None = None) -> set[str] | None:
    """Tables that have a group of this job in the Pushgateway (None if it cannot be asked)."""
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
    tables = set()
    for group in groups:
        labels: dict[str, Any] = group.get("labels", {})
        if labels.get("job") == JOB and "table" in labels:
            tables.add(labels["table"])
    return tables


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
