"""Build the Grafana dashboard ``dashboards/iceberg-offload.json`` (uid ``iceberg-offload``).

The dashboard is written with Grafana's foundation SDK (``grafana-foundation-sdk``, a pinned dev
dependency) and generated, never edited by hand: run ``python docker/grafana/build_dashboard.py``
after changing this file and commit both. ``--check`` exits non-zero when the committed JSON is not
what this script produces (tests/rules/test_dashboard.py runs the same comparison).

Thresholds come from ``../prometheus/thresholds.yml``, the one place the alert rules, the
dashboard and the docs take their numbers from. Metric names are those of
``offload_pipeline/metrics/contract.py``; every panel query runs against a live Prometheus in
``tests/e2e/test_dashboard_queries.py``. ``--runbooks-url URL`` builds a dashboard whose runbook
links start at URL (the ``runbooks`` variable's default; the committed file uses the default).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, gauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as parts
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
THRESHOLDS_FILE = HERE.parent / "prometheus" / "thresholds.yml"
OUTPUT = HERE / "dashboards" / "iceberg-offload.json"

UID = "iceberg-offload"
TITLE = "Iceberg Offload Pipeline"
# the uid of the datasource in provisioning/datasources/prometheus.yml
DATASOURCE_UID = "prometheus"
DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# where docs/runbooks/ is published for this deployment (a docs site, or the repository's web
# view); the default is the runbooks' path in the repository. links use the `runbooks` variable,
# so a deployment sets it in the dashboard settings, by ?var-runbooks=, or at build time
DEFAULT_RUNBOOKS_URL = "docs/runbooks"
RUNBOOKS = "${runbooks}/"
DAGSTER_UI = "http://localhost:3000"

# one pipeline at a time (single-valued $pipeline): deployments sharing a Prometheus may have
# tables of the same name, and no `sum by (table)` below may add two pipelines together
JOB = 'job="iceberg_offload", pipeline="$pipeline"'
# per-table selector: the tables picked in the $table variable
T = 'job="iceberg_offload", pipeline="$pipeline", table=~"$table"'
# the same in the repeated row, where each copy of the row has ${table} set to one table
PER_TABLE = 'job="iceberg_offload", pipeline="$pipeline", table=~"${table}"'
# every table of the pipeline, whatever $table picks: the top-N panels rank them all
ALL_TABLES = 'job="iceberg_offload", pipeline="$pipeline", table!=""'
# tables per top-N panel: bounded, so a panel reads the same at 10 tables or 1,000
TOP_N = 10
# counters move once per 15-minute run: windows shorter than a few runs are empty between runs
# and spike at each one, so every window over them is an hour (as in the recording rules)
WINDOW = "1h"
# a pushed value whose group was not pushed for this long is stale (the sensor pushes every
# group every 30 s): the `stale_after` variable, the heartbeat threshold by default
STALE_AFTER = "$stale_after"
# firing offload alerts; the watchdog fires always, by design
FIRING = 'alertstate="firing", alertname=~"IcebergOffload.*", alertname!="IcebergOffloadWatchdog"'

Thresholds = dict[str, float]
Links = list[Builder[model.DashboardLink]]
Steps = board.ThresholdsConfig
AnyPanel = TypeVar(
    "AnyPanel", stat.Panel, gauge.Panel, bargauge.Panel, timeseries.Panel, table.Panel
)
Queries = list[prometheus.Dataquery]
# a row and the panels shown under it
Section = tuple[board.Row, list[Builder[model.Panel]]]


def read_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    """The flat ``key: number`` file, read without a YAML library (comments and blanks skipped)."""
    values: Thresholds = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, raw = line.partition(":")
        number = float(raw.strip())
        values[key.strip()] = int(number) if number.is_integer() else number
    return values


def duration(seconds: float) -> str:
    """A PromQL duration for a whole number of seconds (3600 -> 1h)."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def steps(*levels: tuple[str, float], base: str = "green") -> Steps:
    """Absolute thresholds: ``base`` below the first level, then each level's colour."""
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=color) for color, value in levels]
        )
    )


def lag_steps(th: Thresholds) -> Steps:
    return steps(("orange", th["lag_warning_seconds"]), ("red", th["lag_critical_seconds"]))


def cycle_steps(th: Thresholds) -> Steps:
    return steps(("orange", th["cycle_slow_seconds"]), ("red", th["cycle_too_slow_seconds"]))


def failure_steps(th: Thresholds) -> Steps:
    return steps(("red", th["consecutive_failures"]))


def query(expr: str, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    """A Prometheus target; an instant one comes back as a table (one row per series)."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DS)
    return target.instant().format(PromQueryFormat.TABLE) if instant else target.range()


def current(expr: str, legend: str = "") -> prometheus.Dataquery:
    """The value now, for single-value panels: an instant query returns nothing for a series that
    Prometheus marked stale, where a range query would still hold its old points."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DS)
    return target.instant().format(PromQueryFormat.TIME_SERIES)


def fresh(expr: str, selector: str = T) -> str:
    """``expr`` only for the groups pushed within ``$stale_after``: the Pushgateway keeps a dead
    pusher's last values forever, so a pushed value is only as fresh as its group's last push.

    ``selector`` names the groups: per-table (the default, or ``ALL_TABLES``) or pipeline-wide
    (``JOB``).
    """
    per_table = "table" in selector
    on = "job, pipeline, table" if per_table else "job, pipeline"
    group = selector if per_table else f'{selector}, table=""'
    age = f"time() - push_time_seconds{{{group}}}"
    return f"{expr}\n  and on ({on})\n({age} < {STALE_AFTER})"


def link(title: str, url: str) -> board.DashboardLink:
    return board.DashboardLink(title).url(url).target_blank(True)


def runbook(page: str, title: str) -> Links:
    return [link(f"Runbook: {title}", RUNBOOKS + page)]


def last_value() -> parts.ReduceDataOptions:
    """Single-value panels show the newest sample of each series, or nothing: never an older
    non-null value once the series is stale (``lastNotNull`` would stay green on it)."""
    return parts.ReduceDataOptions().calcs(["last"]).fields("").values(False)


def panel(
    look: Callable[[bool], AnyPanel],
    title: str,
    description: str,
    unit: str,
    queries: Queries,
    thresholds: Steps | None = None,
    links: Links | None = None,
) -> AnyPanel:
    """A panel of one look (a kind with its options), told whether there are thresholds.

    With thresholds the values take their colours; without, the series take the palette's.
    """
    thresholded = thresholds is not None
    colours = model.FieldColorModeId
    colour = colours.THRESHOLDS if thresholded else colours.PALETTE_CLASSIC
    built = look(thresholded)
    built.title(title).description(description).datasource(DS).unit(unit)
    built.thresholds(thresholds or steps()).color_scheme(board.FieldColor().mode(colour))
    built.targets([q.ref_id(chr(ord("A") + i)) for i, q in enumerate(queries)])
    if links:
        built.links(links)
    return built


def big_number(thresholded: bool) -> stat.Panel:
    """A stat on the threshold colour (no colour without thresholds)."""
    modes = common.BigValueColorMode
    return (
        stat.Panel()
        .reduce_options(last_value())
        .color_mode(modes.BACKGROUND if thresholded else modes.NONE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
        .text_mode(common.BigValueTextMode.AUTO)
    )


def dial(thresholded: bool) -> gauge.Panel:
    """A gauge with its threshold markers."""
    return (
        gauge.Panel()
        .reduce_options(last_value())
        .orientation(common.VizOrientation.AUTO)
        .show_threshold_labels(False)
        .show_threshold_markers(thresholded)
    )


def bars(thresholded: bool) -> bargauge.Panel:
    """One horizontal bar per series (per table)."""
    return (
        bargauge.Panel()
        .reduce_options(last_value())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
    )


def lines(thresholded: bool) -> timeseries.Panel:
    """A time series with a table legend; thresholds, when there are some, as dashed lines."""
    shown = common.GraphThresholdsStyleMode
    legend = parts.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
    tooltip = parts.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
    return (
        timeseries.Panel()
        .legend(legend.placement(common.LegendPlacement.BOTTOM).show_legend(True))
        .tooltip(tooltip.sort(common.SortOrder.DESCENDING))
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .span_nulls(False)
        .show_points(common.VisibilityMode.NEVER)
        .stacking(parts.StackingConfig().mode(common.StackingMode.NONE).group("A"))
        .thresholds_style(
            parts.GraphThresholdsStyleConfig().mode(shown.DASHED if thresholded else shown.OFF)
        )
    )


def rows_of_series(thresholded: bool) -> table.Panel:
    """One table row per series of an instant query."""
    return (
        table.Panel()
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .footer(parts.TableFooterOptions().show(False))
        .align(common.FieldTextAlignment.AUTO)
        .cell_options(common.TableAutoCellOptions())
    )


def overview(th: Thresholds) -> Section:
    """Is the daemon ticking, is anything firing, how far behind is each table."""
    return board.Row("Overview"), [
        heartbeat_age(th).span(4).height(5),
        configured_tables().span(4).height(5),
        last_cycle(th).span(4).height(5),
        firing_alerts().span(12).height(5),
        lag_per_table(th).span(12).height(7),
        success_rate(th).span(12).height(7),
    ]


def heartbeat_age(th: Thresholds) -> stat.Panel:
    return heartbeat(
        big_number,
        "Heartbeat age",
        "Seconds since the metrics sensor last ticked (time() - "
        "offload_heartbeat_timestamp_seconds). Red above "
        f"{th['heartbeat_max_age_seconds']} s: the Dagster daemon is not running schedules "
        "or sensors (IcebergOffloadSchedulerDown). Check Deployment → Daemons in the "
        "Dagster UI.",
        current,
        th,
    )


def heartbeat(
    look: Callable[[bool], AnyPanel],
    title: str,
    description: str,
    target: Callable[[str, str], prometheus.Dataquery],
    th: Thresholds,
) -> AnyPanel:
    """The heartbeat's age, red past the scheduler-down threshold, as a value or over time."""
    age = f"time() - offload_heartbeat_timestamp_seconds{{{JOB}}}"
    return panel(
        look,
        title,
        description,
        "s",
        [target(age, "heartbeat age")],
        steps(("red", th["heartbeat_max_age_seconds"])),
        runbook("scheduler.md#icebergoffloadschedulerdown", "scheduler down"),
    )


def configured_tables() -> stat.Panel:
    return panel(
        big_number,
        "Configured tables",
        "Tables in the offload config (offload_tables_configured).",
        "none",
        [current(fresh(f"offload_tables_configured{{{JOB}}}", JOB), "tables")],
    )


def last_cycle(th: Thresholds) -> stat.Panel:
    return panel(
        big_number,
        "Last cycle duration",
        "Duration of the last finished offload cycle (offload_last_cycle_duration_seconds). "
        f"Orange above {th['cycle_slow_seconds']} s (IcebergOffloadCycleSlow), red above "
        f"{th['cycle_too_slow_seconds']} s (IcebergOffloadCycleTooSlow).",
        "s",
        [current(fresh(f"offload_last_cycle_duration_seconds{{{JOB}}}", JOB), "last cycle")],
        cycle_steps(th),
        runbook("performance.md#icebergoffloadcycletooslow", "slow cycles"),
    )


def firing_alerts() -> table.Panel:
    return panel(
        rows_of_series,
        "Firing offload alerts",
        "Offload alerts firing in Prometheus now (ALERTS), without the always-firing watchdog. "
        "Each alert's runbook_url annotation links its runbook; Alertmanager routes critical "
        "alerts to the pager.",
        "none",
        [query(f"ALERTS{{{FIRING}}}", instant=True)],
        links=[link("Runbooks", RUNBOOKS + "README.md")],
    )


def lag_per_table(th: Thresholds) -> gauge.Panel:
    return (
        panel(
            dial,
            "Lag per table",
            "Newest hot-tier event time minus the watermark committed in Iceberg "
            "(offload_lag_seconds). Orange above "
            f"{th['lag_warning_seconds']} s (IcebergOffloadLagElevated), red above "
            f"{th['lag_critical_seconds']} s (IcebergOffloadLagCritical). A table that never "
            "committed has no lag: see Configured tables and the not-reporting alert.",
            "s",
            [current(fresh(f"offload_lag_seconds{{{T}}}"), "{{table}}")],
            lag_steps(th),
            runbook("lag.md#icebergoffloadlagcritical", "lag"),
        )
        .min(0)
        .max(th["lag_critical_seconds"] * 2)
    )


def success_rate(th: Thresholds) -> bargauge.Panel:
    """Successes over finished attempts per table, over the alert's window."""
    window = duration(th["success_rate_window_seconds"])
    runs = f"increase(offload_runs_total{{{T}"
    successes = f'sum by (table) ({runs}, status="success"}}[{window}]))'
    attempts = f"sum by (table) ({runs}}}[{window}]))"
    # sum over status per table before dividing; `or ... * 0` keeps a table without successes
    ratio = f"(\n  {successes}\n    or\n  {attempts} * 0\n)\n  /\n({attempts} > 0)"
    return (
        panel(
            bars,
            f"Success rate per table ({window})",
            "Share of finished attempts that succeeded over the last hour, summed over status "
            "per table before dividing. Red below "
            f"{th['success_rate_min']:.0%} (IcebergOffloadSuccessRateLow, which also needs "
            f"{th['success_rate_min_attempts']} attempts). No bar: no attempt in the hour.",
            "percentunit",
            [current(ratio, "{{table}}")],
            steps(("green", th["success_rate_min"]), base="red"),
            runbook("failures.md#icebergoffloadsuccessratelow", "success rate"),
        )
        .min(0)
        .max(1)
        .decimals(1)
    )


def top_tables(th: Thresholds) -> Section:
    """The few tables that need a look, ranked among all of the pipeline's tables: readable at
    1,000 tables, where a panel or row per table is not."""
    return board.Row(f"Top {TOP_N} tables"), [
        top_lag(th).span(12).height(8),
        top_failures(th).span(12).height(8),
        top_since_success(th).span(12).height(8),
        top_reconciliation().span(12).height(8),
    ]


def ranked(expr: str) -> str:
    """The ``TOP_N`` highest fresh values of ``expr`` (over ``ALL_TABLES``), highest first: the
    freshness guard goes inside ``topk`` so a stale table never takes a fresh one's place."""
    return f"sort_desc(topk({TOP_N}, {fresh(expr, ALL_TABLES)}))"


def top(
    title: str,
    description: str,
    unit: str,
    expr: str,
    thresholds: Steps | None = None,
    links: Links | None = None,
) -> bargauge.Panel:
    """One bar per table for the ``TOP_N`` tables with the highest ``expr``."""
    return panel(
        bars,
        title,
        f"{description} The {TOP_N} highest of all the pipeline's tables, whatever $table "
        "selects; no data: no table pushed within $stale_after.",
        unit,
        [current(ranked(expr), "{{table}}")],
        thresholds,
        links,
    ).min(0)


def top_lag(th: Thresholds) -> bargauge.Panel:
    return top(
        "Highest lag",
        "offload_lag_seconds: orange above "
        f"{th['lag_warning_seconds']} s, red above {th['lag_critical_seconds']} s.",
        "s",
        f"offload_lag_seconds{{{ALL_TABLES}}}",
        lag_steps(th),
        runbook("lag.md#icebergoffloadlagcritical", "lag"),
    )


def top_failures(th: Thresholds) -> bargauge.Panel:
    return top(
        "Longest failure streaks",
        "offload_consecutive_failures (failed runs since the last success): red at "
        f"{th['consecutive_failures']}. All at 0: nothing is failing.",
        "none",
        f"offload_consecutive_failures{{{ALL_TABLES}}}",
        failure_steps(th),
        runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
    )


def top_since_success(th: Thresholds) -> bargauge.Panel:
    # a table that never succeeded reports 0: left out rather than an age since 1970
    last = f"(offload_last_success_timestamp_seconds{{{ALL_TABLES}}} > 0)"
    return top(
        "Oldest last success",
        "Time since each table's last successful attempt ended (time() - "
        f"offload_last_success_timestamp_seconds): orange above {th['not_reporting_seconds']} s, "
        "four missed 15-minute runs.",
        "s",
        f"time() - {last}",
        steps(("orange", th["not_reporting_seconds"])),
        runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
    )


def top_reconciliation() -> bargauge.Panel:
    return top(
        "Largest reconciliation deltas",
        "Size of the last reconciliation delta, either sign (abs of "
        "offload_reconciliation_delta_rows): orange when not 0; the sign is in the table's row.",
        "short",
        f"abs(offload_reconciliation_delta_rows{{{ALL_TABLES}}})",
        steps(),
        runbook("reconciliation.md#icebergoffloadreconciliationmismatch", "reconciliation"),
    ).mappings(nonzero_orange())


def throughput_and_duration(th: Thresholds) -> Section:
    """How fast rows land in Iceberg and how long attempts and cycles take."""
    return board.Row("Throughput and duration"), [
        rows_committed().span(12).height(8),
        attempt_throughput(th).span(12).height(8),
        attempt_duration().span(12).height(8),
        cycles_by_status().span(12).height(8),
        cycle_duration(th).span(24).height(7),
    ]


def quantile(q: float, histogram: str, by: str, selector: str = T) -> str:
    """The q-quantile of a histogram over the last hour's observations, per ``by`` label set."""
    observed = f"increase({histogram}_bucket{{{selector}}}[{WINDOW}])"
    return f"histogram_quantile({q}, sum by ({by}) ({observed}))"


def rows_committed() -> timeseries.Panel:
    return panel(
        lines,
        "Rows committed per second (1h average)",
        "Rows committed to Iceberg per second, averaged over the last hour (the recording rule "
        "iceberg_offload:rows_rate:1h over offload_rows_total). The offload runs every 15 "
        "minutes: an hour spans four runs, so the line neither drops to zero between runs nor "
        "spikes at each one.",
        "suffix: rows/s",
        [query(f"sum by (table) (iceberg_offload:rows_rate:1h{{{T}}})", "{{table}}")],
    )


def attempt_throughput(th: Thresholds) -> timeseries.Panel:
    histogram = "offload_rows_per_second"
    return panel(
        lines,
        "Attempt throughput p50 / p95 (rows/s)",
        "Quantiles of the throughput of successful attempts, from the offload_rows_per_second "
        "histogram. Below "
        f"{th['throughput_min_rows_per_second']} rows/s for large attempts is slow "
        "(IcebergOffloadThroughputLow). Over the attempts of the last hour: empty only when "
        "no attempt succeeded in the hour.",
        "suffix: rows/s",
        [
            query(quantile(0.5, histogram, "le, table"), "p50 {{table}}"),
            query(quantile(0.95, histogram, "le, table"), "p95 {{table}}"),
        ],
        steps(("green", th["throughput_min_rows_per_second"]), base="orange"),
        runbook("performance.md#icebergoffloadthroughputlow", "throughput"),
    )


def attempt_duration() -> timeseries.Panel:
    histogram = "offload_duration_seconds"
    return panel(
        lines,
        "Attempt duration p50 / p95 / p99",
        "Quantiles of offload attempt duration per table over the attempts of the last hour, "
        "from the offload_duration_seconds histogram (buckets 1 s to 600 s), and the hour's "
        "mean (the recording rule iceberg_offload:duration_avg:1h).",
        "s",
        [
            *(
                query(quantile(q, histogram, "le, table"), f"p{round(q * 100)} {{{{table}}}}")
                for q in (0.5, 0.95, 0.99)
            ),
            query(f"iceberg_offload:duration_avg:1h{{{T}}}", "mean {{table}}"),
        ],
    )


def cycles_by_status() -> timeseries.Panel:
    cycles = f"sum by (status) (iceberg_offload:cycle_count:1h{{{JOB}}})"
    return panel(
        lines,
        "Cycles by status (1h)",
        "Offload cycles that finished in the last hour, by status (the recording rule "
        "iceberg_offload:cycle_count:1h over offload_cycles_total): about four per hour with "
        "the 15-minute schedule. partial: some tables failed; failed: every table failed.",
        "short",
        [query(cycles, "{{status}}")],
    )


def cycle_duration(th: Thresholds) -> timeseries.Panel:
    return panel(
        lines,
        "Cycle duration p95 and last cycle",
        "95th percentile of the duration of the cycles of the last hour "
        "(offload_cycle_duration_seconds histogram) and the last cycle's duration, against the "
        "slow-cycle thresholds.",
        "s",
        [
            query(quantile(0.95, "offload_cycle_duration_seconds", "le", JOB), "p95"),
            query(f"offload_last_cycle_duration_seconds{{{JOB}}}", "last cycle"),
        ],
        cycle_steps(th),
        runbook("performance.md#icebergoffloadcycleslow", "slow cycles"),
    )


def failures_and_freshness(th: Thresholds) -> Section:
    """What failed and why, and how old the newest committed row is."""
    return board.Row("Failures and freshness"), [
        errors_by_type().span(12).height(8),
        consecutive_failures(th).span(12).height(8),
        watermark_age().span(8).height(8),
        late_rows(th).span(8).height(8),
        since_last_attempt().span(8).height(8),
    ]


def errors_by_type() -> timeseries.Panel:
    errors = f"sum by (table, error_type) (increase(offload_errors_total{{{T}}}[{WINDOW}]))"
    return panel(
        lines,
        "Errors by table and error_type (1h)",
        "Failed attempts of the last hour by cause (increase of offload_errors_total over 1h). "
        "The error_type names the runbook section: source_*, catalog_unavailable, "
        "commit_conflict, write_failed, timeout, config_invalid, run_failure, unknown.",
        "short",
        [query(errors, "{{table}} {{error_type}}")],
        links=runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
    )


def consecutive_failures(th: Thresholds) -> bargauge.Panel:
    return (
        panel(
            bars,
            "Consecutive failures",
            "Failed runs since the last success (offload_consecutive_failures). Red at "
            f"{th['consecutive_failures']} (IcebergOffloadConsecutiveFailures, critical).",
            "none",
            [current(fresh(f"offload_consecutive_failures{{{T}}}"), "{{table}}")],
            failure_steps(th),
            runbook("failures.md#icebergoffloadconsecutivefailures", "failures"),
        )
        .min(0)
        .max(th["consecutive_failures"] * 2)
    )


def watermark_age() -> timeseries.Panel:
    return panel(
        lines,
        "Watermark age (freshness)",
        "Now minus the committed watermark (an event time): how old the newest row in "
        "Iceberg is. Grows in a quiet market without anything being wrong; compare with the "
        "lag, which only counts rows that are waiting.",
        "s",
        [query(f"time() - offload_watermark_timestamp_seconds{{{T}}}", "{{table}}")],
        links=runbook("watermark.md#icebergoffloadwatermarkstale", "watermark"),
    )


def late_rows(th: Thresholds) -> bargauge.Panel:
    window = duration(th["late_rows_window_seconds"])
    late = f"sum by (table) (increase(offload_late_rows_total{{{T}}}[{window}]))"
    return panel(
        bars,
        f"Late rows ({window})",
        "Rows that arrived in the hot tier behind the committed watermark in the last hour "
        "(increase of offload_late_rows_total). Any is IcebergOffloadLateRows: they are not in "
        "Iceberg until that range is backfilled.",
        "short",
        [current(late, "{{table}}")],
        None,
        runbook("late-rows.md#icebergoffloadlaterows", "late rows"),
    ).min(0)


def since_last_attempt() -> timeseries.Panel:
    return panel(
        lines,
        "Time since last attempt",
        "Seconds since each table's last attempt ended, any status (time() - "
        "offload_last_run_timestamp_seconds). Over an hour is IcebergOffloadTableNotReporting.",
        "s",
        [query(f"time() - offload_last_run_timestamp_seconds{{{T}}}", "{{table}}")],
        links=runbook("scheduler.md#icebergoffloadtablenotreporting", "not reporting"),
    )


def monitoring_chain(th: Thresholds) -> Section:
    """Can a quiet dashboard and a quiet pager be trusted: Pushgateway, pushes, sensor, rules."""
    return board.Row("Monitoring chain"), [
        pushgateway_up().span(8).height(5),
        failing_push_groups().span(8).height(5),
        watchdog().span(8).height(5),
        heartbeat_history(th).span(12).height(7),
        push_ages(th).span(12).height(7),
    ]


def up_or_down(up: str, down: str) -> model.ValueMap:
    """A 0/1 value shown as words in green/red: colours from the mapping, not thresholds."""
    result = model.ValueMappingResult
    return model.ValueMap(
        {
            "0": result(text=down, color="red", index=0),
            "1": result(text=up, color="green", index=1),
        }
    )


def pushgateway_up() -> stat.Panel:
    return (
        panel(
            big_number,
            "Pushgateway up",
            "Whether Prometheus' last scrape of the Pushgateway succeeded "
            '(up{job="pushgateway"}). down: no offload metric reaches Prometheus and every other '
            "panel is frozen or empty "
            "(IcebergOffloadPushgatewayDown).",
            "none",
            [current('up{job="pushgateway"}', "{{instance}}")],
            links=runbook("metrics.md#icebergoffloadpushgatewaydown", "Pushgateway down"),
        )
        .mappings([up_or_down("up", "down")])
        .color_mode(common.BigValueColorMode.BACKGROUND)
    )


def failing_push_groups() -> stat.Panel:
    """Any failing group is red: value mappings, since a count of 1 is no threshold of the rules."""
    # the Pushgateway stamps each group with its last good and last rejected push
    failing = f"push_failure_time_seconds{{{JOB}}} > push_time_seconds{{{JOB}}}"
    result = model.ValueMappingResult
    ranges = model.DashboardRangeMapOptions
    mappings: list[model.ValueMapping] = [
        model.ValueMap({"0": result(color="green", index=0)}),
        model.RangeMap(ranges(from_val=0.5, to=1e15, result=result(color="red", index=1))),
    ]
    return panel(
        big_number,
        "Groups whose last push failed",
        "Pushgateway groups of this pipeline whose last rejected push is newer than their last "
        "good one (push_failure_time_seconds > push_time_seconds). Red when not 0: a pusher's "
        "metrics are not getting through (IcebergOffloadMetricsPushFailing).",
        "none",
        [current(f"count({failing}) or vector(0)", "groups")],
        steps(),
        runbook("metrics.md#icebergoffloadmetricspushfailing", "push failing"),
    ).mappings(mappings)


def watchdog() -> stat.Panel:
    firing = 'ALERTS{alertname="IcebergOffloadWatchdog", alertstate="firing"}'
    return (
        panel(
            big_number,
            "Watchdog",
            "The always-firing IcebergOffloadWatchdog alert: firing means Prometheus evaluates "
            "the offload rules. No data: the rules are not loaded or not evaluated, and no "
            "offload alert can fire. Whether Alertmanager delivers it is watched outside (the "
            "watchdog receiver's heartbeat service).",
            "none",
            [current(f"count({firing})", "watchdog")],
            links=runbook("metrics.md#icebergoffloadwatchdog", "watchdog"),
        )
        .mappings([up_or_down("firing", "not firing")])
        .color_mode(common.BigValueColorMode.BACKGROUND)
    )


def heartbeat_history(th: Thresholds) -> timeseries.Panel:
    return heartbeat(
        lines,
        "Heartbeat age over time",
        "Age of the metrics sensor's heartbeat over the time range: a saw tooth below "
        f"{th['heartbeat_max_age_seconds']} s while the sensor ticks every 30 s; a ramp is a "
        "sensor that stopped (IcebergOffloadSchedulerDown), a gap a Pushgateway that was "
        "down or emptied.",
        query,
        th,
    )


def push_ages(th: Thresholds) -> timeseries.Panel:
    return panel(
        lines,
        "Age of the last good push per group",
        "Seconds since each Pushgateway group of this pipeline last took a push "
        "(time() - push_time_seconds): the pipeline-wide group and one per table. The sensor "
        "pushes every group every 30 s; a group above the line shows stale values (single-value "
        "panels then show no data for it).",
        "s",
        [query(f"time() - push_time_seconds{{{JOB}}}", "{{table}}")],
        steps(("red", th["heartbeat_max_age_seconds"])),
    )


def per_table(th: Thresholds) -> Section:
    """One copy of the row per selected table: its numbers, its Iceberg table, its checks.

    Collapsed, with its panels inside it: Grafana queries a collapsed row's panels only once it
    is opened, so the dashboard costs the same at 1,000 tables (the top-N panels find the tables
    to open).
    """
    row = board.Row("Table $table").repeat("table")
    for each in (
        *(number.span(4).height(4) for number in table_numbers(th)),
        iceberg_files().span(12).height(6),
        hot_tier_and_watermark().span(12).height(6),
        small_file_ratio().span(12).height(6),
        since_maintenance(th).span(6).height(6),
        reconciliation_delta().span(6).height(6),
    ):
        row.with_panel(each)
    return row, []


def table_numbers(th: Thresholds) -> list[stat.Panel]:
    """The last value of each per-table gauge of this row's table."""
    return [
        table_stat(
            "Lag", "offload_lag_seconds", "s", "offload_lag_seconds of this table.", lag_steps(th)
        ),
        last_attempt_succeeded(),
        table_stat(
            "Consecutive failures",
            "offload_consecutive_failures",
            "none",
            "Failed runs since the last success (retries inside a run count once).",
            failure_steps(th),
        ),
        table_stat(
            "Last attempt rows",
            "offload_last_run_rows",
            "short",
            "Rows committed by the last attempt.",
        ),
        table_stat(
            "Last attempt duration",
            "offload_last_run_duration_seconds",
            "s",
            "Duration of the last attempt.",
        ),
        table_stat(
            "Rows in Iceberg (total)",
            "offload_rows_total",
            "short",
            "Rows committed to Iceberg by the pipeline (offload_rows_total).",
        ),
    ]


def table_stat(
    title: str, metric: str, unit: str, description: str, thresholds: Steps | None = None
) -> stat.Panel:
    value = fresh(f"{metric}{{{PER_TABLE}}}", PER_TABLE)
    return panel(big_number, title, description, unit, [current(value, "{{table}}")], thresholds)


def last_attempt_succeeded() -> stat.Panel:
    """A 0/1 gauge shown as words; colours from the mapping, not from thresholds."""
    result = model.ValueMappingResult
    yes_no = model.ValueMap(
        {
            "0": result(text="no", color="red", index=0),
            "1": result(text="yes", color="green", index=1),
        }
    )
    return (
        table_stat(
            "Last attempt succeeded",
            "offload_last_run_success",
            "none",
            "offload_last_run_success: yes (green) if the last attempt succeeded, no (red) if not.",
        )
        .mappings([yes_no])
        .color_mode(common.BigValueColorMode.BACKGROUND)
    )


def iceberg_files() -> timeseries.Panel:
    return panel(
        lines,
        "Iceberg snapshots and data files",
        "Snapshots in the table's metadata and its live data files. Both grow with every "
        "commit until maintenance expires snapshots and compacts files.",
        "short",
        [
            query(f"offload_iceberg_snapshots{{{PER_TABLE}}}", "snapshots"),
            query(f"offload_iceberg_data_files{{{PER_TABLE}}}", "data files"),
        ],
    )


def hot_tier_and_watermark() -> timeseries.Panel:
    hot_tier = f"time() - offload_source_max_timestamp_seconds{{{PER_TABLE}}}"
    watermark = f"time() - offload_watermark_timestamp_seconds{{{PER_TABLE}}}"
    return panel(
        lines,
        "Hot tier and watermark",
        "Newest hot-tier event time and the committed watermark, as ages (now minus each). "
        "The gap between the lines is the lag.",
        "s",
        [query(hot_tier, "hot tier newest row"), query(watermark, "watermark")],
    )


def small_file_ratio() -> timeseries.Panel:
    return (
        panel(
            lines,
            "Small-file ratio",
            "Share of live data files that maintenance would compact: below 75 % of the target "
            "file size and sharing a partition with another such file. Climbs between "
            "maintenances, drops to about 0 after one.",
            "percentunit",
            [query(f"offload_iceberg_small_file_ratio{{{PER_TABLE}}}", "{{table}}")],
        )
        .min(0)
        .max(1)
    )


def since_maintenance(th: Thresholds) -> stat.Panel:
    overdue = th["maintenance_max_age_seconds"]
    # a table never maintained reports 0: no data rather than an age since 1970
    age = f"time() - (offload_last_maintenance_timestamp_seconds{{{PER_TABLE}}} > 0)"
    return panel(
        big_number,
        "Since last maintenance",
        "Time since the table's last successful Iceberg maintenance ended (no data: never "
        f"maintained). Orange above {duration(overdue)} (IcebergOffloadMaintenanceOverdue).",
        "s",
        [current(age, "{{table}}")],
        steps(("orange", overdue)),
        runbook("maintenance.md#icebergoffloadmaintenanceoverdue", "maintenance overdue"),
    )


def nonzero_orange() -> list[model.ValueMapping]:
    """The reconciliation alert fires on any non-zero delta, either sign: value mappings, not
    thresholds."""
    result = model.ValueMappingResult
    ranges = model.DashboardRangeMapOptions
    return [
        model.ValueMap({"0": result(color="green", index=0)}),
        model.RangeMap(ranges(from_val=0.5, to=1e15, result=result(color="orange", index=1))),
        model.RangeMap(ranges(from_val=-1e15, to=-0.5, result=result(color="orange", index=2))),
    ]


def reconciliation_delta() -> stat.Panel:
    return panel(
        big_number,
        "Reconciliation delta",
        "Hot-tier rows minus Iceberg rows over the closed windows the last reconciliation "
        "check compared (0: equal; positive: missing in Iceberg, e.g. late rows; negative: "
        "duplicates or rows the hot tier no longer holds). Orange when not 0 "
        "(IcebergOffloadReconciliationMismatch). The check's detail is in the Dagster UI.",
        "short",
        [
            current(
                fresh(f"offload_reconciliation_delta_rows{{{PER_TABLE}}}", PER_TABLE), "{{table}}"
            )
        ],
        steps(),
        runbook("reconciliation.md#icebergoffloadreconciliationmismatch", "reconciliation"),
    ).mappings(nonzero_orange())


def variables(th: Thresholds, runbooks_url: str) -> list[Builder[model.VariableModel]]:
    """``datasource`` (default: the provisioned Prometheus), ``pipeline`` (one at a time),
    ``table`` (multi, no All: it opens on the first table, and each pick is a repeated row), and
    the hidden ``runbooks`` (link base) and ``stale_after``."""
    pipelines = "label_values(offload_heartbeat_timestamp_seconds, pipeline)"
    # the sensor pushes a table's run counters from the event log at every tick, whether or not
    # its hot tier or Iceberg table can be read: every configured table has them
    tables = f"label_values(offload_runs_total{{{JOB}}}, table)"
    datasource = (
        board.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(model.VariableOption(selected=True, text="Prometheus", value=DATASOURCE_UID))
        .hide(model.VariableHide.DONT_HIDE)
        .multi(False)
        .include_all(False)
        .regex("")
    )
    pipeline_variable = (
        board.QueryVariable("pipeline")
        .label("Pipeline")
        .datasource(DS)
        .query({"query": pipelines, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .current(model.VariableOption(selected=True, text="default", value="default"))
        .hide(model.VariableHide.DONT_HIDE)
        .include_all(False)
        .multi(False)
        .options([])
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    table_variable = (
        board.QueryVariable("table")
        .label("Table")
        .datasource(DS)
        .query({"query": tables, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .hide(model.VariableHide.DONT_HIDE)
        .include_all(False)
        .multi(True)
        .options([])
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    runbooks = (
        board.TextBoxVariable("runbooks")
        .label("Runbooks URL")
        .description("Where docs/runbooks/ is published; every runbook link starts here.")
        .default_value(runbooks_url)
        .current(model.VariableOption(selected=True, text=runbooks_url, value=runbooks_url))
        .hide(model.VariableHide.HIDE_VARIABLE)
    )
    stale_after = (
        board.ConstantVariable("stale_after")
        .description(
            "Seconds after its group's last push a pushed value counts as stale "
            "(heartbeat_max_age_seconds)."
        )
        .value(str(th["heartbeat_max_age_seconds"]))
    )
    return [datasource, pipeline_variable, table_variable, runbooks, stale_after]


def dashboard_links() -> Links:
    return [
        link("Runbooks", RUNBOOKS + "README.md").icon("doc").tooltip("One runbook per alert"),
        link("Dagster UI", DAGSTER_UI)
        .icon("external link")
        .tooltip("Runs, assets, schedules and Deployment → Daemons"),
    ]


def annotations_and_alerts() -> board.AnnotationQuery:
    """Grafana's built-in annotations, as a new dashboard has them."""
    return (
        board.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .built_in(1)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )


def build(
    thresholds: Thresholds | None = None, runbooks_url: str = DEFAULT_RUNBOOKS_URL
) -> model.Dashboard:
    """The dashboard (deterministic: same thresholds and runbooks URL, same dashboard)."""
    th = thresholds or read_thresholds()
    dashboard = (
        board.Dashboard(TITLE)
        .uid(UID)
        .description(
            "Offload of bronze tables into Apache Iceberg: lag, success, throughput, failures "
            "and daemon health. Generated by docker/grafana/build_dashboard.py."
        )
        .tags(["iceberg", "offload", "dagster"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .timezone("browser")
        .refresh("30s")
        .live_now(False)
        .week_start("")
        .fiscal_year_start_month(0)
        .version(1)
        .links(dashboard_links())
        .variables(variables(th, runbooks_url.rstrip("/")))
        .annotation(annotations_and_alerts())
    )
    # rows stay expanded (Row.with_panel would nest the panels and collapse the row), and the
    # SDK starts a new grid line only once a line is full: each section's widths fill 24 columns
    sections = (
        overview,
        top_tables,
        throughput_and_duration,
        failures_and_freshness,
        monitoring_chain,
        per_table,
    )
    for section in sections:
        row, panels = section(th)
        dashboard.with_row(row)
        for each in panels:
            dashboard.with_panel(each)
    return number_panels(dashboard.build())


def number_panels(dashboard: model.Dashboard) -> model.Dashboard:
    """Panel ids in reading order, a collapsed row's panels after the row: the SDK lays the
    grid out but leaves ids to the author."""
    ordered: list[model.Panel | model.RowPanel] = []
    for each in dashboard.panels or []:
        ordered.append(each)
        if isinstance(each, model.RowPanel):
            ordered += each.panels
    for number, each in enumerate(ordered, start=1):
        each.id_val = number
    return dashboard


def render(dashboard: model.Dashboard | None = None) -> str:
    """The dashboard JSON as committed: sorted keys, so an SDK upgrade diffs only real changes."""
    text = json.dumps(dashboard or build(), cls=JSONEncoder, indent=2, sort_keys=True)
    return text + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON")
    parser.add_argument(
        "--runbooks-url",
        default=DEFAULT_RUNBOOKS_URL,
        help=f"where docs/runbooks/ is published (default: {DEFAULT_RUNBOOKS_URL})",
    )
    args = parser.parse_args(argv)
    text = render(build(runbooks_url=args.runbooks_url))
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is stale: run python docker/grafana/build_dashboard.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
