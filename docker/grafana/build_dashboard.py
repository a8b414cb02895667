"""Build the Grafana dashboard ``dashboards/iceberg-offload.json`` (uid ``iceberg-offload``).

The dashboard is generated, never edited by hand: run ``python docker/grafana/build_dashboard.py``
after changing this file and commit both. ``--check`` exits non-zero when the committed JSON is not
what this script produces (tests/rules/test_dashboard.py runs the same comparison).

Thresholds come from ``../prometheus/thresholds.yml``, the one place the alert rules, the
dashboard and the docs take their numbers from. Metric names are those of
``offload_pipeline/metrics/contract.py``; every panel query runs against a live Prometheus in
``tests/e2e/test_dashboard_queries.py``. Plain Python: no dependency beyond the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THRESHOLDS_FILE = HERE.parent / "prometheus" / "thresholds.yml"
OUTPUT = HERE / "dashboards" / "iceberg-offload.json"

UID = "iceberg-offload"
TITLE = "Iceberg Offload Pipeline"
SCHEMA_VERSION = 39
# the uid of the datasource in provisioning/datasources/prometheus.yml
DATASOURCE_UID = "prometheus"
DS = {"type": "prometheus", "uid": "${datasource}"}
RUNBOOKS = "https://github.com/offload-pipeline/offload_pipeline/blob/main/docs/runbooks/"
DAGSTER_UI = "http://localhost:3000"

JOB = 'job="iceberg_offload"'
# per-table selector: the $table variable (All = ".*")
T = 'job="iceberg_offload", table=~"$table"'
WIDTH = 24
YES_NO_PANEL = "Last attempt succeeded"
# a 0/1 gauge shown as words; colours from the mapping, not from thresholds
YES_NO = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no", "color": "red", "index": 0},
            "1": {"text": "yes", "color": "green", "index": 1},
        },
    }
]


def read_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """The flat ``key: number`` file, read without a YAML library (comments and blanks skipped)."""
    values: dict[str, float] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, raw = line.partition(":")
        number = float(raw.strip())
        values[key.strip()] = int(number) if number.is_integer() else number
    return values


def steps(*levels: tuple[str, float]) -> dict[str, Any]:
    """Absolute thresholds: green below the first level, then each level's colour."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for color, value in levels],
    }


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        out.update({"instant": True, "range": False, "format": "table"})
    else:
        out.update({"instant": False, "range": True})
    return out


def runbook(page: str, title: str) -> list[dict[str, Any]]:
    return [{"title": f"Runbook: {title}", "url": RUNBOOKS + page, "targetBlank": True}]


class Layout:
    """Places panels left to right, wrapping at 24 columns; assigns ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str, **extra: Any) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": self.y},
                "panels": [],
                **extra,
            }
        )
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
            self.x = 0
            self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > WIDTH:
            self._newline()
        panel = {"id": self._id(), **panel}
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any] | None = None,
    links: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    extra_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": thresholds or steps(),
        "color": {"mode": "thresholds" if thresholds else "palette-classic"},
        **(extra_defaults or {}),
    }
    if custom is not None:
        defaults["custom"] = custom
    out: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "targets": [
            {**t, "refId": t.get("refId") if len(targets) == 1 else chr(ord("A") + i)}
            for i, t in enumerate(targets)
        ],
    }
    if links:
        out["links"] = links
    return out


REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat_options(**extra: Any) -> dict[str, Any]:
    return {
        "reduceOptions": REDUCE,
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
        **extra,
    }


def gauge_options() -> dict[str, Any]:
    return {
        "reduceOptions": REDUCE,
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }


def bar_options() -> dict[str, Any]:
    return {
        "reduceOptions": REDUCE,
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
    }


def series_options() -> dict[str, Any]:
    return {
        "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def lines(thresholds_style: str = "off", stacked: bool = False, bars: bool = False) -> dict:
    return {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 10,
        "spanNulls": False,
        "showPoints": "never",
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": thresholds_style},
    }


def build(thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """The dashboard as a dict (deterministic: same thresholds, same dashboard)."""
    th = thresholds or read_thresholds()
    lag = steps(("orange", th["lag_warning_seconds"]), ("red", th["lag_critical_seconds"]))
    cycle = steps(("orange", th["cycle_slow_seconds"]), ("red", th["cycle_too_slow_seconds"]))
    failures = steps(("red", th["consecutive_failures"]))
    heartbeat = steps(("red", th["heartbeat_max_age_seconds"]))
    success = {
        "mode": "absolute",
        "steps": [
            {"color": "red", "value": None},
            {"color": "green", "value": th["success_rate_min"]},
        ],
    }
    throughput = {
        "mode": "absolute",
        "steps": [
            {"color": "orange", "value": None},
            {"color": "green", "value": th["throughput_min_rows_per_second"]},
        ],
    }
    rate_window = "$__rate_interval"
    late_window = _duration(th["late_rows_window_seconds"])
    success_window = _duration(th["success_rate_window_seconds"])

    # sum over status per table before dividing; `or ... * 0` keeps a table without successes
    successes = (
        f'sum by (table) (increase(offload_runs_total{{{T}, status="success"}}[{success_window}]))'
    )
    attempts = f"sum by (table) (increase(offload_runs_total{{{T}}}[{success_window}]))"

    layout = Layout()

    # ---- overview -------------------------------------------------------------------------
    layout.row("Overview")
    layout.add(
        panel(
            "stat",
            "Heartbeat age",
            "Seconds since the metrics sensor last ticked (time() - "
            "offload_heartbeat_timestamp_seconds). Red above "
            f"{th['heartbeat_max_age_seconds']} s: the Dagster daemon is not running schedules "
            "or sensors (IcebergOffloadSchedulerDown). Check Deployment → Daemons in the "
            "Dagster UI.",
            [target(f"time() - offload_heartbeat_timestamp_seconds{{{JOB}}}", "heartbeat age")],
            "s",
            heartbeat,
            runbook("scheduler.md#icebergoffloadschedulerdown", "scheduler down"),
            stat_options(),
        ),
        w=4,
        h=5,
    )
    layout.add(
        panel(
            "stat",
            "Configured tables",
            "Tables in the offload config (offload_tables_configured).",
            [target(f"offload_tables_configured{{{JOB}}}", "tables")],
            "none",
            options=stat_options(colorMode="none"),
        ),
        w=4,
        h=5,
    )
    layout.add(
        panel(
            "stat",
            "Last cycle duration",
            "Duration of the last finished offload cycle (offload_last_cycle_duration_seconds). "
            f"Orange above {th['cycle_slow_seconds']} s (IcebergOffloadCycleSlow), red above "
            f"{th['cycle_too_slow_seconds']} s (IcebergOffloadCycleTooSlow).",
            [target(f"offload_last_cycle_duration_seconds{{{JOB}}}", "last cycle")],
            "s",
            cycle,
            runbook("performance.md#icebergoffloadcycletooslow", "slow cycles"),
            stat_options(),
        ),
        w=4,
        h=5,
    )
    layout.add(
        panel(
            "table",
            "Firing offload alerts",
            "Offload alerts firing in Prometheus now (ALERTS). Each alert's runbook_url "
            "annotation links its runbook; Alertmanager routes critical alerts to the pager.",
            [
                target(
                    'ALERTS{alertstate="firing", alertname=~"IcebergOffload.*"}',
                    instant=True,
                )
            ],
            "none",
            links=[{"title": "Runbooks", "url": RUNBOOKS + "README.md", "targetBlank": True}],
            options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
            custom={"align": "auto", "cellOptions": {"type": "auto"}},
        ),
        w=12,
        h=5,
    )
    layout.add(
        panel(
            "gauge",
            "Lag per table",
            "Newest hot-tier event time minus the watermark committed in Iceberg "
            "(offload_lag_seconds). Orange above "
            f"{th['lag_warning_seconds']} s (IcebergOffloadLagElevated), red above "
            f"{th['lag_critical_seconds']} s (IcebergOffloadLagCritical). A table that never "
            "committed has no lag: see Configured tables and the not-reporting alert.",
            [target(f"offload_lag_seconds{{{T}}}", "{{table}}")],
            "s",
            lag,
            runbook("lag.md#icebergoffloadlagcritical", "lag"),
            gauge_options(),
            extra_defaults={"min": 0, "max": th["lag_critical_seconds"] * 2},
        ),
        w=12,
        h=7,
    )
    layout.add(
        panel(
            "bargauge",
            f"Success rate per table ({success_window})",
            "Share of finished attempts that succeeded over the last hour, summed over status "
            "per table before dividing. Red below "
            f"{th['success_rate_min']:.0%} (IcebergOffloadSuccessRateLow, which also needs "
            f"{th['success_rate_min_attempts']} attempts). No bar: no attempt in the hour.",
            [
                target(
                    f"(\n  {successes}\n    or\n  {attempts} * 0\n)\n  /\n({attempts} > 0)",
                    "{{table}}",
                )
            ],
            "percentunit",
            success,
            runbook("failures.md#icebergoffloadsuccessratelow", "success rate"),
            bar_options(),
            extra_defaults={"min": 0, "max": 1, "decimals": 1},
        ),
        w=12,
        h=7,
    )

    # ---- throughput and duration ----------------------------------------------------------
    layout.row("Throughput and duration")
    layout.add(
        panel(
            "timeseries",
            "Rows committed per second",
            "Rows committed to Iceberg per second (rate of offload_rows_total). The offload runs "
            "every 15 minutes, so this is spiky by design: a spike per run.",
            [
                target(
                    f"sum by (table) (rate(offload_rows_total{{{T}}}[{rate_window}]))",
                    "{{table}}",
                )
            ],
            "suffix: rows/s",
            options=series_options(),
            custom=lines(),
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Attempt throughput p50 / p95 (rows/s)",
            "Quantiles of the throughput of successful attempts, from the offload_rows_per_second "
            "histogram. Below "
            f"{th['throughput_min_rows_per_second']} rows/s for large attempts is slow "
            "(IcebergOffloadThroughputLow). Empty between runs: no attempts in the window.",
            [
                target(
                    "histogram_quantile(0.5, sum by (le, table) "
                    f"(rate(offload_rows_per_second_bucket{{{T}}}[{rate_window}])))",
                    "p50 {{table}}",
                ),
                target(
                    "histogram_quantile(0.95, sum by (le, table) "
                    f"(rate(offload_rows_per_second_bucket{{{T}}}[{rate_window}])))",
                    "p95 {{table}}",
                ),
            ],
            "suffix: rows/s",
            throughput,
            runbook("performance.md#icebergoffloadthroughputlow", "throughput"),
            series_options(),
            lines("dashed"),
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Attempt duration p50 / p95 / p99",
            "Quantiles of offload attempt duration per table, from the offload_duration_seconds "
            "histogram (buckets 1 s to 600 s).",
            [
                target(
                    f"histogram_quantile({q}, sum by (le, table) "
                    f"(rate(offload_duration_seconds_bucket{{{T}}}[{rate_window}])))",
                    f"p{round(q * 100)} {{{{table}}}}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            "s",
            options=series_options(),
            custom=lines(),
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Cycles by status",
            "Finished offload cycles by status (increase of offload_cycles_total). partial: some "
            "tables failed; failed: every table failed.",
            [
                target(
                    f"sum by (status) (increase(offload_cycles_total{{{JOB}}}[{rate_window}]))",
                    "{{status}}",
                )
            ],
            "short",
            options=series_options(),
            custom=lines(stacked=True, bars=True),
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Cycle duration p95 and last cycle",
            "95th percentile of the cycle duration (offload_cycle_duration_seconds histogram) "
            "and the last cycle's duration, against the slow-cycle thresholds.",
            [
                target(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(offload_cycle_duration_seconds_bucket{{{JOB}}}[{rate_window}])))",
                    "p95",
                ),
                target(f"offload_last_cycle_duration_seconds{{{JOB}}}", "last cycle"),
            ],
            "s",
            cycle,
            runbook("performance.md#icebergoffloadcycleslow", "slow cycles"),
            series_options(),
            lines("dashed"),
        ),
        w=24,
        h=7,
    )

    # ---- failures and freshness -----------------------------------------------------------
    layout.row("Failures and freshness")
    layout.add(
        panel(
            "timeseries",
            "Errors by table and error_type",
            "Failed attempts by cause (increase of offload_errors_total). The error_type names "
            "the runbook section: source_*, catalog_unavailable, commit_conflict, write_failed, "
            "timeout, config_invalid, run_failure, unknown.",
            [
                target(
                    "sum by (table, error_type) "
                    f"(increase(offload_errors_total{{{T}}}[{rate_window}]))",
                    "{{table}} {{error_type}}",
                )
            ],
            "short",
            None,
            runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
            series_options(),
            lines(stacked=True, bars=True),
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "bargauge",
            "Consecutive failures",
            "Failed attempts since the last success (offload_consecutive_failures). Red at "
            f"{th['consecutive_failures']} (IcebergOffloadConsecutiveFailures, critical).",
            [target(f"offload_consecutive_failures{{{T}}}", "{{table}}")],
            "none",
            failures,
            runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
            bar_options(),
            extra_defaults={"min": 0, "max": th["consecutive_failures"] * 2},
        ),
        w=12,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Watermark age (freshness)",
            "Now minus the committed watermark (an event time): how old the newest row in "
            "Iceberg is. Grows in a quiet market without anything being wrong; compare with the "
            "lag, which only counts rows that are waiting.",
            [
                target(
                    f"time() - offload_watermark_timestamp_seconds{{{T}}}",
                    "{{table}}",
                )
            ],
            "s",
            None,
            runbook("watermark.md#icebergoffloadwatermarkstale", "watermark"),
            series_options(),
            lines(),
        ),
        w=8,
        h=8,
    )
    layout.add(
        panel(
            "bargauge",
            f"Late rows ({late_window})",
            "Rows that arrived in the hot tier behind the committed watermark in the last hour "
            "(increase of offload_late_rows_total). Any is IcebergOffloadLateRows: they are not in "
            "Iceberg until that range is backfilled.",
            [
                target(
                    f"sum by (table) (increase(offload_late_rows_total{{{T}}}[{late_window}]))",
                    "{{table}}",
                )
            ],
            "short",
            None,
            runbook("late-rows.md#icebergoffloadlaterows", "late rows"),
            bar_options(),
            extra_defaults={"min": 0},
        ),
        w=8,
        h=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Time since last attempt",
            "Seconds since each table's last attempt ended, any status (time() - "
            "offload_last_run_timestamp_seconds). Over an hour is IcebergOffloadTableNotReporting.",
            [target(f"time() - offload_last_run_timestamp_seconds{{{T}}}", "{{table}}")],
            "s",
            links=runbook("scheduler.md#icebergoffloadtablenotreporting", "not reporting"),
            options=series_options(),
            custom=lines(),
        ),
        w=8,
        h=8,
    )

    # ---- one row per table ----------------------------------------------------------------
    layout.row("Table $table", repeat="table", repeatDirection="h")
    per_table = 'job="iceberg_offload", table=~"${table}"'
    for title, expr, unit, th_steps, description in (
        (
            "Lag",
            f"offload_lag_seconds{{{per_table}}}",
            "s",
            lag,
            "offload_lag_seconds of this table.",
        ),
        (
            YES_NO_PANEL,
            f"offload_last_run_success{{{per_table}}}",
            "none",
            None,
            "offload_last_run_success: yes (green) if the last attempt succeeded, no (red) if not.",
        ),
        (
            "Consecutive failures",
            f"offload_consecutive_failures{{{per_table}}}",
            "none",
            failures,
            "Failed attempts since the last success.",
        ),
        (
            "Last attempt rows",
            f"offload_last_run_rows{{{per_table}}}",
            "short",
            None,
            "Rows committed by the last attempt.",
        ),
        (
            "Last attempt duration",
            f"offload_last_run_duration_seconds{{{per_table}}}",
            "s",
            None,
            "Duration of the last attempt.",
        ),
        (
            "Rows in Iceberg (total)",
            f"offload_rows_total{{{per_table}}}",
            "short",
            None,
            "Rows committed to Iceberg by the pipeline (offload_rows_total).",
        ),
    ):
        layout.add(
            panel(
                "stat",
                title,
                description,
                [target(expr, "{{table}}")],
                unit,
                th_steps,
                options=stat_options(
                    colorMode="background" if th_steps or title == YES_NO_PANEL else "none"
                ),
                extra_defaults={"mappings": YES_NO} if title == YES_NO_PANEL else None,
            ),
            w=4,
            h=4,
        )
    layout.add(
        panel(
            "timeseries",
            "Iceberg snapshots and data files",
            "Snapshots in the table's metadata and its live data files. Both grow with every "
            "commit until maintenance expires snapshots and compacts files.",
            [
                target(f"offload_iceberg_snapshots{{{per_table}}}", "snapshots"),
                target(f"offload_iceberg_data_files{{{per_table}}}", "data files"),
            ],
            "short",
            options=series_options(),
            custom=lines(),
        ),
        w=12,
        h=6,
    )
    layout.add(
        panel(
            "timeseries",
            "Hot tier and watermark",
            "Newest hot-tier event time and the committed watermark, as ages (now minus each). "
            "The gap between the lines is the lag.",
            [
                target(
                    f"time() - offload_source_max_timestamp_seconds{{{per_table}}}",
                    "hot tier newest row",
                ),
                target(
                    f"time() - offload_watermark_timestamp_seconds{{{per_table}}}",
                    "watermark",
                ),
            ],
            "s",
            options=series_options(),
            custom=lines(),
        ),
        w=12,
        h=6,
    )

    layout.add(
        panel(
            "timeseries",
            "Small-file ratio",
            "Share of live data files that maintenance would compact: below 75 % of the target "
            "file size and sharing a partition with another such file. Climbs between "
            "maintenances, drops to about 0 after one.",
            [target(f"offload_iceberg_small_file_ratio{{{per_table}}}", "{{table}}")],
            "percentunit",
            options=series_options(),
            custom=lines(),
            extra_defaults={"min": 0, "max": 1},
        ),
        w=12,
        h=6,
    )
    layout.add(
        panel(
            "stat",
            "Since last maintenance",
            "Time since the table's last successful Iceberg maintenance ended (no data: never "
            f"maintained). Orange above {_duration(th['maintenance_max_age_seconds'])} "
            "(IcebergOffloadMaintenanceOverdue).",
            [
                target(
                    f"time() - (offload_last_maintenance_timestamp_seconds{{{per_table}}} > 0)",
                    "{{table}}",
                )
            ],
            "s",
            steps(("orange", th["maintenance_max_age_seconds"])),
            runbook("maintenance.md#icebergoffloadmaintenanceoverdue", "maintenance overdue"),
            stat_options(colorMode="background"),
        ),
        w=6,
        h=6,
    )
    layout.add(
        panel(
            "stat",
            "Reconciliation delta",
            "Hot-tier rows minus Iceberg rows over the closed windows the last reconciliation "
            "check compared (0: equal; positive: missing in Iceberg, e.g. late rows; negative: "
            "duplicates or rows the hot tier no longer holds). Orange when not 0 "
            "(IcebergOffloadReconciliationMismatch). The check's detail is in the Dagster UI.",
            [target(f"offload_reconciliation_delta_rows{{{per_table}}}", "{{table}}")],
            "short",
            steps(),
            runbook("reconciliation.md#icebergoffloadreconciliationmismatch", "reconciliation"),
            stat_options(colorMode="background"),
            # the alert fires on any non-zero delta, either sign: value mappings, not thresholds
            extra_defaults={
                "mappings": [
                    {"type": "value", "options": {"0": {"color": "green", "index": 0}}},
                    {
                        "type": "range",
                        "options": {
                            "from": 0.5,
                            "to": 1e15,
                            "result": {"color": "orange", "index": 1},
                        },
                    },
                    {
                        "type": "range",
                        "options": {
                            "from": -1e15,
                            "to": -0.5,
                            "result": {"color": "orange", "index": 2},
                        },
                    },
                ]
            },
        ),
        w=6,
        h=6,
    )
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": "Offload of bronze tables into Apache Iceberg: lag, success, throughput, "
        "failures and daemon health. Generated by docker/grafana/build_dashboard.py.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "title": "Runbooks",
                "type": "link",
                "icon": "doc",
                "url": RUNBOOKS + "README.md",
                "targetBlank": True,
                "tooltip": "One runbook per alert",
                "asDropdown": False,
                "includeVars": False,
                "keepTime": False,
                "tags": [],
            },
            {
                "title": "Dagster UI",
                "type": "link",
                "icon": "external link",
                "url": DAGSTER_UI,
                "targetBlank": True,
                "tooltip": "Runs, assets, schedules and Deployment → Daemons",
                "asDropdown": False,
                "includeVars": False,
                "keepTime": False,
                "tags": [],
            },
        ],
        "liveNow": False,
        "panels": layout.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["iceberg", "offload", "dagster"],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"selected": True, "text": "Prometheus", "value": DATASOURCE_UID},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                },
                {
                    "name": "table",
                    "label": "Table",
                    "type": "query",
                    "datasource": DS,
                    "definition": "label_values(offload_source_max_timestamp_seconds, table)",
                    "query": {
                        "query": "label_values(offload_source_max_timestamp_seconds, table)",
                        "refId": "PrometheusVariableQueryEditor-VariableQuery",
                    },
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "hide": 0,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "skipUrlSync": False,
                    "sort": 1,
                },
            ]
        },
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": TITLE,
        "uid": UID,
        "version": 1,
        "weekStart": "",
    }


def _duration(seconds: float) -> str:
    """A PromQL duration for a whole number of seconds (3600 -> 1h)."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def render(dashboard: dict[str, Any] | None = None) -> str:
    return json.dumps(dashboard or build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is stale: run python docker/grafana/build_dashboard.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
