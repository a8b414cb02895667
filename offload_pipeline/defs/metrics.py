"""Metric facts from Dagster and Iceberg, folded and pushed: what the hooks and sensors call.

The counters live in the metrics sensor's cursor (durable in the Dagster instance) as totals over
finished runs of the event log, plus what Iceberg itself records (rows, late rows); every tick
pushes the full values, so a restarted Pushgateway is whole again after one tick.
"""

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.execution.stats import StepEventStatus

from offload_pipeline import __version__
from offload_pipeline.config import Config, TableSpec
from offload_pipeline.core.handle import open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.maintenance import small_file_threshold
from offload_pipeline.core.status import observe
from offload_pipeline.core.window import MICROS
from offload_pipeline.defs.attempts import (
    Attempt,
    finished_runs,
    is_cycle,
    run_attempts,
    run_tables,
    will_retry,
)
from offload_pipeline.defs.checks import RECONCILIATION_CHECK
from offload_pipeline.metrics import push
from offload_pipeline.metrics.collect import (
    CycleTotals,
    LastRun,
    TableGauges,
    TableTotals,
    last_run_families,
    pipeline_families,
    table_families,
)

log = logging.getLogger(__name__)

# failed attempts since the last success are looked for in at most this many recent runs
CONSECUTIVE_FAILURES_LOOKBACK_RUNS = 100


def last_run(instance: dg.DagsterInstance, table: str, run_id: str) -> LastRun | None:
    """The latest attempt of ``table`` in run ``run_id``, with the table's failure streak.

    Reads only this step's events (step stats), so its cost does not grow with the run's size.
    """
    stats = _step_stats(instance, run_id, table)
    run = instance.get_run_by_id(run_id)
    if run is None or (stats is None and table not in run_tables(run, [table])):
        return None
    success = stats is not None and stats.status == StepEventStatus.SUCCESS
    marker = stats.attempts_list[-1] if stats and stats.attempts_list else None
    run_end = instance.get_run_stats(run_id).end_time
    finished = (marker and marker.end_time) or (stats and stats.end_time) or run_end or time.time()
    started = (marker and marker.start_time) or (stats and stats.start_time) or finished
    last_success_at = _last_offload_success(instance, table)
    if success:
        rows = 0
        if stats and stats.materialization_events:
            materialization = stats.materialization_events[-1].asset_materialization
            rows = int(materialization.metadata["rows"].value) if materialization else 0
        # the success time is the materialization's, for the hooks and the sensor alike
        return LastRun(finished, True, finished - started, rows, last_success_at, 0)
    streak = _failures_since(instance, table, last_success_at or 0.0)
    return LastRun(finished, False, finished - started, 0, last_success_at, max(streak, 1))


def push_last_run(url: str, instance: dg.DagsterInstance, table: str, run_id: str) -> bool:
    """Push the hook-owned gauges of ``table`` for its attempt in ``run_id``."""
    if not url:
        return False
    facts = last_run(instance, table, run_id)
    if facts is None:
        return False
    return push.push_table(url, table, last_run_families(table, facts))


def _last_offload_success(instance: dg.DagsterInstance, table: str) -> float | None:
    """When ``table`` last materialized from an offload (backfill materializations skipped)."""
    records = instance.fetch_materializations(
        dg.AssetKey(table), limit=CONSECUTIVE_FAILURES_LOOKBACK_RUNS, ascending=False
    ).records
    for record in records:
        materialization = record.asset_materialization
        mode = materialization.metadata.get("mode") if materialization else None
        if mode is None or mode.value != "backfill":
            return record.timestamp
    return None


def _step_stats(instance: dg.DagsterInstance, run_id: str, table: str):  # noqa: ANN202
    stats = instance.get_run_step_stats(run_id, step_keys=[table])
    return stats[0] if stats else None


def _failures_since(instance: dg.DagsterInstance, table: str, since: float) -> int:
    """Failed attempts of ``table`` in the runs created after its last success."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_after=datetime.fromtimestamp(since, tz=UTC)),
        limit=CONSECUTIVE_FAILURES_LOOKBACK_RUNS,
    )
    failures = 0
    for record in records:
        run = record.dagster_run
        if table not in run_tables(run, [table]):
            continue
        stats = _step_stats(instance, run.run_id, table)
        if stats is not None and stats.status == StepEventStatus.FAILURE:
            failures += stats.attempts or 1
        elif (stats is None or stats.status == StepEventStatus.IN_PROGRESS) and run.status in (
            dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED,
        ):
            failures += 1  # the run died before or during the step
    return failures


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
    instance: dg.DagsterInstance, config: Config, state: MetricsState, now: float | None = None
) -> TickReport:
    """Fold newly finished runs into ``state``, measure every table, push everything."""
    now = time.time() if now is None else now
    names = [t.name for t in config.tables]
    state.tables = {name: state.tables.get(name, TableTotals()) for name in names}
    runs = 0
    for run in finished_runs(instance, state.positions):
        runs += 1
        attempts = run_attempts(instance, run, names)
        if will_retry(run):
            # the daemon re-executes this run; only attempts that really ran are counted here
            attempts = [a for a in attempts if a.error_type not in ("run_failure", "timeout")]
        for attempt in attempts:
            _fold(state.tables[attempt.table], attempt)
        if is_cycle(run) and not will_retry(run):
            _fold_cycle(state.cycles, instance, run, attempts)

    url = config.pushgateway_url
    catalog = IcebergCatalog(config.catalog)
    results = [
        push.push_table(
            url,
            spec.name,
            table_families(
                spec.name,
                state.tables[spec.name],
                measure(spec, catalog, instance, small_file_threshold(config.maintenance)),
            ),
        )
        for spec in config.tables
    ]
    results.append(
        push.push_pipeline(
            url,
            pipeline_families(state.cycles, len(names), __version__, config.schedule_cron, now),
        )
    )
    deleted = 0
    if url:
        for stale in sorted((push.pushed_tables(url) or set()) - set(names)):
            deleted += push.delete_table(url, stale)
    return TickReport(runs, len(names), sum(results), results.count(False), deleted)


def measure(
    spec: TableSpec,
    catalog: IcebergCatalog,
    instance: dg.DagsterInstance,
    small_file_bytes: int | None = None,
) -> TableGauges:
    """What Iceberg, the hot tier and the last reconciliation say about ``spec``, in metric
    units."""
    seen = observe(open_table(spec, catalog), small_file_bytes)
    for error in seen.errors:
        log.warning("metrics: %s", error)
    state = seen.state
    return TableGauges(
        rows_total=state.rows_total if state else 0,
        late_rows_total=state.late_rows_total if state else 0,
        schema_changes_total=state.schema_changes_total if state else 0,
        watermark_ts=_seconds(seen.watermark_ts),
        source_max_ts=_seconds(seen.source_max_ts),
        lag_seconds=seen.lag_seconds,
        snapshots=seen.snapshots if state else None,
        data_files=seen.data_files,
        reconciliation_delta_rows=reconciliation_delta(instance, spec.name),
        small_file_ratio=seen.small_file_ratio if state else None,
        last_maintenance_ts=(state.maintained_at or 0.0) if state else None,
    )


def reconciliation_delta(instance: dg.DagsterInstance, table: str) -> int | None:
    """``delta_rows`` of the table's latest reconciliation check (None: never checked)."""
    key = dg.AssetCheckKey(dg.AssetKey(table), RECONCILIATION_CHECK)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    event = record.event.dagster_event if record and record.event else None
    evaluation = event.event_specific_data if event else None
    delta = getattr(evaluation, "metadata", {}).get("delta_rows")
    return int(delta.value) if delta is not None else None


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / MICROS


def _fold(totals: TableTotals, attempt: Attempt) -> None:
    totals.duration.observe(attempt.duration_seconds)
    if attempt.success:
        totals.success += 1
        if attempt.rows_per_second is not None and attempt.rows > 0:
            totals.rows_per_second.observe(attempt.rows_per_second)
    else:
        totals.failure += 1
        error_type = attempt.error_type or "unknown"
        totals.errors[error_type] = totals.errors.get(error_type, 0) + 1


def _fold_cycle(
    cycles: CycleTotals,
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    attempts: Sequence[Attempt],
) -> None:
    final: dict[str, bool] = {}
    for attempt in attempts:
        final[attempt.table] = attempt.success  # the last attempt of each table decides
    if not final:
        status = "failed"
    elif all(final.values()):
        status = "success"
    elif any(final.values()):
        status = "partial"
    else:
        status = "failed"
    cycles.statuses[status] = cycles.statuses.get(status, 0) + 1
    stats = instance.get_run_stats(run.run_id)
    if stats.start_time is not None and stats.end_time is not None:
        duration = max(0.0, stats.end_time - stats.start_time)
        cycles.duration.observe(duration)
        cycles.last_duration = duration
