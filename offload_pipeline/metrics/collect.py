"""Facts → metric families in a fresh registry, one registry per push.

Counters and histograms are *set* from cumulative totals derived from durable state (the Dagster
event log, the Iceberg table); nothing here is incremented in a short-lived process.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from offload_pipeline.metrics.contract import (
    CYCLE_STATUSES,
    LAYER,
    RUN_STATUSES,
    MetricSpec,
    spec,
)


@dataclass
class Histogram:
    """Cumulative observations of one histogram: per-bucket counts (non-cumulative), sum, count."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        out: list[tuple[str, float]] = []
        for bound, n in zip([*map(_bound, self.buckets), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "total": self.total}

    @classmethod
    def from_json(cls, buckets: tuple[float, ...], data: Mapping[str, Any] | None) -> Histogram:
        if not data or len(data["counts"]) != len(buckets) + 1:
            return cls(buckets)
        return cls(buckets, list(data["counts"]), float(data["total"]))


@dataclass
class TableTotals:
    """Cumulative attempt counts of one table, from the Dagster event log."""

    success: int = 0
    failure: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    duration: Histogram = field(
        default_factory=lambda: Histogram(spec("offload_duration_seconds").buckets)
    )
    rows_per_second: Histogram = field(
        default_factory=lambda: Histogram(spec("offload_rows_per_second").buckets)
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "failure": self.failure,
            "errors": self.errors,
            "duration": self.duration.to_json(),
            "rows_per_second": self.rows_per_second.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableTotals:
        return cls(
            success=int(data.get("success", 0)),
            failure=int(data.get("failure", 0)),
            errors={k: int(v) for k, v in data.get("errors", {}).items()},
            duration=Histogram.from_json(
                spec("offload_duration_seconds").buckets, data.get("duration")
            ),
            rows_per_second=Histogram.from_json(
                spec("offload_rows_per_second").buckets, data.get("rows_per_second")
            ),
        )


@dataclass
class CycleTotals:
    """Cumulative cycle counts of the pipeline."""

    statuses: dict[str, int] = field(default_factory=dict)
    duration: Histogram = field(
        default_factory=lambda: Histogram(spec("offload_cycle_duration_seconds").buckets)
    )
    last_duration: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "statuses": self.statuses,
            "duration": self.duration.to_json(),
            "last_duration": self.last_duration,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CycleTotals:
        return cls(
            statuses={k: int(v) for k, v in data.get("statuses", {}).items()},
            duration=Histogram.from_json(
                spec("offload_cycle_duration_seconds").buckets, data.get("duration")
            ),
            last_duration=data.get("last_duration"),
        )


@dataclass(frozen=True)
class TableGauges:
    """The per-table values read from Iceberg and the hot tier right now, in metric units
    (None: could not be read, and the metric is not pushed)."""

    rows_total: int | None = None
    late_rows_total: int | None = None
    watermark_ts: float | None = None
    source_max_ts: float | None = None
    lag_seconds: float | None = None
    watermark_advanced_ts: float | None = None
    snapshots: int | None = None
    data_files: int | None = None
    schema_changes_total: int | None = None
    reconciliation_delta_rows: int | None = None
    small_file_ratio: float | None = None
    last_maintenance_ts: float | None = None
    """0 for a table that exists but was never maintained"""


@dataclass(frozen=True)
class LastRun:
    """The table's most recent attempt (pushed by hooks as soon as it ends)."""

    finished_at: float
    success: bool
    duration_seconds: float
    rows: int
    last_success_at: float | None
    consecutive_failures: int


def registry_of(families: Iterable[Metric]) -> CollectorRegistry:
    """A fresh registry holding exactly ``families`` (never the global default registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(list(families)))
    return registry


def last_run_families(table: str, run: LastRun) -> Iterator[Metric]:
    """The hook-owned per-table gauges."""
    yield _gauge("offload_last_run_timestamp_seconds", table, run.finished_at)
    yield _gauge("offload_last_run_success", table, 1.0 if run.success else 0.0)
    yield _gauge("offload_last_run_duration_seconds", table, run.duration_seconds)
    yield _gauge("offload_last_run_rows", table, run.rows)
    yield _gauge("offload_consecutive_failures", table, run.consecutive_failures)
    if run.last_success_at is not None:
        yield _gauge("offload_last_success_timestamp_seconds", table, run.last_success_at)


def table_families(table: str, totals: TableTotals, state: TableGauges) -> Iterator[Metric]:
    """The sensor-owned per-table counters, histograms and gauges."""
    runs = _family(spec("offload_runs_total"))
    for status in RUN_STATUSES:
        runs.add_metric([table, LAYER, status], getattr(totals, status))
    yield runs
    errors = _family(spec("offload_errors_total"))
    for error_type, count in sorted(totals.errors.items()):
        errors.add_metric([table, LAYER, error_type], count)
    yield errors
    yield _histogram("offload_duration_seconds", [table, LAYER], totals.duration)
    yield _histogram("offload_rows_per_second", [table, LAYER], totals.rows_per_second)
    for name, value in (
        ("offload_rows_total", state.rows_total),
        ("offload_late_rows_total", state.late_rows_total),
        ("offload_schema_changes_total", state.schema_changes_total),
        ("offload_watermark_timestamp_seconds", state.watermark_ts),
        ("offload_source_max_timestamp_seconds", state.source_max_ts),
        ("offload_lag_seconds", state.lag_seconds),
        ("offload_watermark_advanced_timestamp_seconds", state.watermark_advanced_ts),
        ("offload_iceberg_snapshots", state.snapshots),
        ("offload_iceberg_data_files", state.data_files),
        ("offload_reconciliation_delta_rows", state.reconciliation_delta_rows),
        ("offload_iceberg_small_file_ratio", state.small_file_ratio),
        # the maintenance op pushes it when it ends; re-pushed here from the Iceberg property
        ("offload_last_maintenance_timestamp_seconds", state.last_maintenance_ts),
    ):
        if value is not None:
            family = _family(spec(name))
            family.add_metric([table, LAYER], value)
            yield family


def maintenance_families(table: str, finished_at: float) -> Iterator[Metric]:
    """What a maintenance pushes as soon as it ends."""
    yield _gauge("offload_last_maintenance_timestamp_seconds", table, finished_at)


def pipeline_families(
    cycles: CycleTotals,
    tables_configured: int,
    version: str,
    schedule: str,
    now: float,
    running_since: float | None = None,
) -> Iterator[Metric]:
    """The sensor-owned pipeline-wide metrics, heartbeat and running cycle included."""
    counter = _family(spec("offload_cycles_total"))
    for status in CYCLE_STATUSES:
        counter.add_metric([status], cycles.statuses.get(status, 0))
    yield counter
    yield _histogram("offload_cycle_duration_seconds", [], cycles.duration)
    if cycles.last_duration is not None:
        yield _plain_gauge("offload_last_cycle_duration_seconds", cycles.last_duration)
    yield from cycle_running_families(running_since)
    yield _plain_gauge("offload_tables_configured", tables_configured)
    info = _family(spec("offload_info"))
    info.add_metric([version, schedule], 1)
    yield info
    yield _plain_gauge("offload_heartbeat_timestamp_seconds", now)


def cycle_running_families(since: float | None) -> Iterator[Metric]:
    """When the oldest running cycle started, 0 when none runs: a hung cycle's age is
    ``time() - since`` while it still runs, not only once it ends."""
    yield _plain_gauge("offload_cycle_running_since_timestamp_seconds", since or 0.0)


class _Static(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _family(s: MetricSpec) -> Any:
    labels = list(s.all_labels)
    if s.kind == "counter":
        return CounterMetricFamily(s.name, s.help, labels=labels)
    if s.kind == "gauge":
        return GaugeMetricFamily(s.name, s.help, labels=labels)
    return HistogramMetricFamily(s.name, s.help, labels=labels)


def _gauge(name: str, table: str, value: float) -> Metric:
    family: GaugeMetricFamily = _family(spec(name))
    family.add_metric([table, LAYER], value)
    return family


def _plain_gauge(name: str, value: float) -> Metric:
    family: GaugeMetricFamily = _family(spec(name))
    family.add_metric([], value)
    return family


def _histogram(name: str, labels: list[str], histogram: Histogram) -> Metric:
    family: HistogramMetricFamily = _family(spec(name))
    family.add_metric(labels, buckets=histogram.cumulative(), sum_value=histogram.total)
    return family


def _bound(value: float) -> str:
    return str(float(value))
