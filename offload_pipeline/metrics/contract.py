"""Every metric the pipeline pushes: name, type, labels, help, buckets. The only place a metric
name is spelled; it mirrors the contract's metric tables.

Per-table metrics carry the labels ``table`` and ``layer`` and are pushed under the grouping key
``{job="iceberg_offload", pipeline=<pipeline>, table=<name>}``; pipeline-wide ones under
``{job="iceberg_offload", pipeline=<pipeline>}`` (see ``metrics.push``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JOB = "iceberg_offload"
LAYER = "bronze"
TABLE_LABELS = ("table", "layer")

Kind = Literal["counter", "gauge", "histogram"]
Scope = Literal["table", "pipeline"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the contract."""

    name: str
    kind: Kind
    help: str
    scope: Scope
    labels: tuple[str, ...] = ()
    """labels besides table and layer"""
    buckets: tuple[float, ...] = ()

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (TABLE_LABELS if self.scope == "table" else ()) + self.labels


DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600)
ROWS_PER_SECOND_BUCKETS = (1_000, 5_000, 10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000)
CYCLE_BUCKETS = (5, 10, 15, 30, 60, 120, 300, 600, 900)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "offload_rows_total",
        "counter",
        "Rows committed to Iceberg by this pipeline.",
        "table",
    ),
    MetricSpec(
        "offload_runs_total",
        "counter",
        "Finished offload attempts of the table.",
        "table",
        labels=("status",),
    ),
    MetricSpec(
        "offload_errors_total",
        "counter",
        "Failed offload attempts, by cause.",
        "table",
        labels=("error_type",),
    ),
    MetricSpec(
        "offload_late_rows_total",
        "counter",
        "Rows found in the hot tier behind the committed watermark.",
        "table",
    ),
    MetricSpec(
        "offload_duration_seconds",
        "histogram",
        "Duration of offload attempts.",
        "table",
        buckets=DURATION_BUCKETS,
    ),
    MetricSpec(
        "offload_rows_per_second",
        "histogram",
        "Throughput of successful offload attempts.",
        "table",
        buckets=ROWS_PER_SECOND_BUCKETS,
    ),
    MetricSpec(
        "offload_last_run_timestamp_seconds",
        "gauge",
        "End of the last offload attempt, any status.",
        "table",
    ),
    MetricSpec(
        "offload_last_success_timestamp_seconds",
        "gauge",
        "End of the last successful offload attempt.",
        "table",
    ),
    MetricSpec(
        "offload_last_run_success",
        "gauge",
        "1 if the last offload attempt succeeded, else 0.",
        "table",
    ),
    MetricSpec(
        "offload_last_run_duration_seconds",
        "gauge",
        "Duration of the last offload attempt.",
        "table",
    ),
    MetricSpec(
        "offload_last_run_rows",
        "gauge",
        "Rows committed by the last offload attempt.",
        "table",
    ),
    MetricSpec(
        "offload_consecutive_failures",
        "gauge",
        "Failed offload runs since the last success (retries inside a run count once).",
        "table",
    ),
    MetricSpec(
        "offload_watermark_timestamp_seconds",
        "gauge",
        "Committed watermark (event time), read from Iceberg.",
        "table",
    ),
    MetricSpec(
        "offload_source_max_timestamp_seconds",
        "gauge",
        "Newest event time in the hot tier at the last measurement.",
        "table",
    ),
    MetricSpec(
        "offload_lag_seconds",
        "gauge",
        "min(hot-tier newest event time, now) minus the watermark, never negative.",
        "table",
    ),
    MetricSpec(
        "offload_watermark_advanced_timestamp_seconds",
        "gauge",
        "Wall-clock time of the Iceberg commit that last moved the watermark.",
        "table",
    ),
    MetricSpec(
        "offload_reconciliation_delta_rows",
        "gauge",
        "Hot-tier rows minus Iceberg rows over the last reconciled closed window.",
        "table",
    ),
    MetricSpec(
        "offload_schema_changes_total",
        "counter",
        "Additive schema changes applied to the Iceberg table.",
        "table",
    ),
    MetricSpec(
        "offload_iceberg_snapshots",
        "gauge",
        "Snapshots in the table's metadata.",
        "table",
    ),
    MetricSpec("offload_iceberg_data_files", "gauge", "Live data files of the table.", "table"),
    MetricSpec(
        "offload_iceberg_small_file_ratio",
        "gauge",
        "Share of live data files that compaction would rewrite (small, sharing a partition).",
        "table",
    ),
    MetricSpec(
        "offload_last_maintenance_timestamp_seconds",
        "gauge",
        "End of the last successful Iceberg maintenance (0: never maintained).",
        "table",
    ),
    MetricSpec(
        "offload_cycles_total",
        "counter",
        "Finished offload cycles (runs of the offload job over its tables).",
        "pipeline",
        labels=("status",),
    ),
    MetricSpec(
        "offload_cycle_duration_seconds",
        "histogram",
        "Duration of offload cycles.",
        "pipeline",
        buckets=CYCLE_BUCKETS,
    ),
    MetricSpec(
        "offload_last_cycle_duration_seconds",
        "gauge",
        "Duration of the last finished offload cycle.",
        "pipeline",
    ),
    MetricSpec(
        "offload_cycle_running_since_timestamp_seconds",
        "gauge",
        "Start of the oldest offload cycle still running (0: none is running).",
        "pipeline",
    ),
    MetricSpec("offload_tables_configured", "gauge", "Tables in the offload config.", "pipeline"),
    MetricSpec(
        "offload_info",
        "gauge",
        "Pipeline metadata (value is always 1).",
        "pipeline",
        labels=("version", "schedule"),
    ),
    MetricSpec(
        "offload_heartbeat_timestamp_seconds",
        "gauge",
        "Last tick of the metrics sensor (proves the sensor ticks, so the daemon runs it).",
        "pipeline",
    ),
)

BY_NAME: dict[str, MetricSpec] = {m.name: m for m in METRICS}
RUN_STATUSES = ("success", "failure")
CYCLE_STATUSES = ("success", "partial", "failed")


def spec(name: str) -> MetricSpec:
    """The spec of a contract metric (KeyError for anything else: names are never invented)."""
    return BY_NAME[name]
