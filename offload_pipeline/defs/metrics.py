"""Metric facts from Dagster and Iceberg, folded and pushed: what the hooks and sensors call.

The counters live in the metrics sensor's cursor (durable in the Dagster instance) as totals over
finished runs of the event log, plus what Iceberg itself records (rows, late rows); every tick
pushes the full values, the hooks' last-run gauges included, so a restarted Pushgateway is whole
again after one tick.
"""

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dagster as dg

from offload_pipeline import __version__
from offload_pipeline.config import Config
from offload_pipeline.core.handle import TableHandle, open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.maintenance import small_file_threshold
from offload_pipeline.core.status import observe, shared_sources
from offload_pipeline.core.window import MICROS
from offload_pipeline.defs.eventlog import (
    RUN_FAILURE,
    TIMEOUT,
    Attempt,
    cycle_running_since,
    finished_runs,
    is_cycle,
    last_run,
    last_runs,
    latest_runs,
    reconciliation_deltas,
    run_attempts,
    run_duration,
    will_retry,
)
from offload_pipeline.metrics import push
from offload_pipeline.metrics.budget import PushBudget, tick_budget
from offload_pipeline.metrics.collect import (
    CycleTotals,
    TableGauges,
    TableTotals,
    cycle_running_families,
    last_run_families,
    pipeline_families,
    table_families,
)

log = logging.getLogger(__name__)


def push_last_run(
    url: str,
    pipeline: str,
    instance: dg.DagsterInstance,
    table: str,
    run_id: str,
    budget: PushBudget | None = None,
) -> bool:
    """Push the hook-owned gauges of ``table`` for its attempt in ``run_id``."""
    if not url:
        return False
    facts = last_run(instance, table, run_id)
    if facts is None:
        return False
    return push.push_table(url, pipeline, table, last_run_families(table, facts), budget=budget)


def push_cycle_running(
    url: str,
    pipeline: str,
    instance: dg.DagsterInstance,
    starting: float | None = None,
    budget: PushBudget | None = None,
) -> bool:
    """Push when the oldest running cycle started (0: none runs); ``starting`` is a cycle this
    process is about to start, whose run is not recorded yet. Called around an in-process cycle;
    the metrics tick pushes the same gauge for the daemon's runs."""
    if not url:
        return False
    since = cycle_running_since(instance)
    if starting is not None:
        since = starting if since is None else min(since, starting)
    return push.push_pipeline(url, pipeline, cycle_running_families(since), budget=budget)


@dataclass
class MetricsState:
    """The metrics sensor's cursor: event-log positions and the totals folded so far."""

    positions: dict[str, int] = field(default_factory=dict)
    tables: dict[str, TableTotals] = field(default_factory=dict)
    cycles: CycleTotals = field(default_factory=CycleTotals)

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "positions": self.positions,
                "tables": {name: t.to_json() for name, t in self.tables.items()},
                "cycles": self.cycles.to_json(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "MetricsState":
        if not cursor:
            return cls()
        data: dict[str, Any] = json.loads(cursor)
        return cls(
            positions={k: int(v) for k, v in data.get("positions", {}).items()},
            tables={k: TableTotals.from_json(v) for k, v in data.get("tables", {}).items()},
            cycles=CycleTotals.from_json(data.get("cycles", {})),
        )


@dataclass(frozen=True)
class TickReport:
    """What one tick did (the sensor's skip message and the benchmark read it)."""

    runs: int
    tables: int
    pushed: int
    failed_pushes: int
    deleted_groups: int


def metrics_tick(
    instance: dg.DagsterInstance,
    config: Config,
    state: MetricsState,
    now: float | None = None,
    budget: PushBudget | None = None,
    max_runs: int | None = None,
) -> TickReport:
    """Fold newly finished runs into ``state`` (at most ``max_runs``, None: all), measure every
    table, push everything within one push budget (unless given, a fresh one sized by
    ``tick_budget``)."""
    now = time.time() if now is None else now
    names = [t.name for t in config.tables]
    budget = budget or tick_budget(len(names) + 1)
    state.tables = {name: state.tables.get(name, TableTotals()) for name in names}
    runs = 0
    for run in finished_runs(instance, state.positions, max_runs=max_runs):
        runs += 1
        attempts = run_attempts(instance, run, names)
        if will_retry(run):
            # the daemon re-executes this run; only attempts that really ran are counted here
            attempts = [a for a in attempts if a.error_type not in (RUN_FAILURE, TIMEOUT)]
        for attempt in attempts:
            fold_attempt(state.tables[attempt.table], attempt)
        if is_cycle(run) and not will_retry(run):
            fold_cycle(state.cycles, attempts, run_duration(instance, run.run_id))

    url = config.pushgateway_url
    catalog = IcebergCatalog(config.catalog)
    small_file_bytes = small_file_threshold(config.maintenance)
    last = last_runs(instance, latest_runs(instance, names))
    deltas = reconciliation_deltas(instance, names)
    # from a random table on: when the budget runs out, other tables wait for the next tick
    start = random.randrange(len(names)) if names else 0
    specs = config.tables[start:] + config.tables[:start]
    handles = shared_sources(open_table(spec, catalog) for spec in specs)
    with handles as tables, push.TablePushes(url, config.pipeline, budget) as pushes:
        for table in tables:
            spec = table.spec
            gauges = measure(table, small_file_bytes, now, deltas[spec.name])
            families = list(table_families(spec.name, state.tables[spec.name], gauges))
            # the hook-owned gauges too, so an emptied Pushgateway is whole again after one tick
            facts = last.get(spec.name)
            if facts is not None:
                families += last_run_families(spec.name, facts)
            pushes.push(spec.name, families)
        results = pushes.results()
    results.append(
        push.push_pipeline(
            url,
            config.pipeline,
            pipeline_families(
                state.cycles,
                len(names),
                __version__,
                config.schedule_cron,
                now,
                cycle_running_since(instance),
            ),
            budget=budget,
        )
    )
    deleted = 0
    if url:
        for key in push.stale_groups(url, config.pipeline, names, budget) or []:
            deleted += push.delete_group(url, key, budget=budget)
    return TickReport(runs, len(names), sum(results), results.count(False), deleted)


def measure(
    table: TableHandle,
    small_file_bytes: int | None,
    now: float,
    delta_rows: int | None,
) -> TableGauges:
    """What Iceberg, the hot tier and the last reconciliation (its ``delta_rows``) say about
    ``table`` at wall-clock ``now``, in metric units."""
    seen = observe(table, int(now * MICROS), small_file_bytes)
    for error in seen.errors:
        log.warning("metrics: %s", error)
    measured = TableGauges(
        source_max_ts=_seconds(seen.source_max_ts),
        reconciliation_delta_rows=delta_rows,
    )
    if seen.iceberg_unreadable:
        # nothing Iceberg-derived this tick: a 0 would read as a counter reset, and the values
        # pushed before stay in the Pushgateway
        return measured
    state = seen.state
    advanced = seen.watermark_advanced_ms
    return replace(
        measured,
        rows_total=state.rows_total if state else 0,
        late_rows_total=state.late_rows_total if state else 0,
        schema_changes_total=state.schema_changes_total if state else 0,
        watermark_ts=_seconds(seen.watermark_ts),
        lag_seconds=seen.lag_seconds,
        watermark_advanced_ts=None if advanced is None else advanced / 1000,
        snapshots=seen.snapshots if state else None,
        data_files=seen.data_files,
        small_file_ratio=seen.small_file_ratio if state else None,
        last_maintenance_ts=(state.maintained_at or 0.0) if state else None,
    )


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / MICROS


def fold_attempt(totals: TableTotals, attempt: Attempt) -> None:
    """Count one finished attempt into its table's totals."""
    totals.duration.observe(attempt.duration_seconds)
    if attempt.success:
        totals.success += 1
        if attempt.rows_per_second is not None and attempt.rows > 0:
            totals.rows_per_second.observe(attempt.rows_per_second)
    else:
        totals.failure += 1
        error_type = attempt.error_type or "unknown"
        totals.errors[error_type] = totals.errors.get(error_type, 0) + 1


def cycle_status(attempts: Sequence[Attempt]) -> str:
    """``success`` when every table's last attempt succeeded, ``partial`` when some did, else
    ``failed`` (a cycle with no attempt at all failed too)."""
    final: dict[str, bool] = {}
    for attempt in attempts:
        final[attempt.table] = attempt.success  # the last attempt of each table decides
    if final and all(final.values()):
        return "success"
    if any(final.values()):
        return "partial"
    return "failed"


def fold_cycle(cycles: CycleTotals, attempts: Sequence[Attempt], duration: float | None) -> None:
    """Count one finished cycle (its attempts, its run's duration) into the pipeline totals."""
    status = cycle_status(attempts)
    cycles.statuses[status] = cycles.statuses.get(status, 0) + 1
    if duration is not None:
        cycles.duration.observe(duration)
        cycles.last_duration = duration
