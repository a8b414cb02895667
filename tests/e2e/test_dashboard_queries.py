"""Live: every query of the Grafana dashboard returns data from a real Prometheus.

A real offload history (successes, late rows, a table failing three times) is pushed to a real
Pushgateway and scraped by a real Prometheus with the project's rules. Then every target of every
panel in docker/grafana/dashboards/iceberg-offload.json, repeated-row panels included, is run
through the Prometheus HTTP API the way Grafana would send it, and must return at least one
series. The original deployment shipped panels that queried series nobody exported; this test
is what keeps that from happening again. Also live: single-value panels go blank once their
series is stale, and ``$table`` lists a table whose hot tier cannot be read.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from offload_pipeline.metrics.push import delete_group, group_key
from tests.conftest import http_json, promql
from tests.e2e.test_metrics import break_table, cycle, maintenance, mend_table, tick
from tests.e2e.test_metrics import value as pushed
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_FILE = ROOT / "docker" / "grafana" / "dashboards" / "iceberg-offload.json"
GUIDE = ROOT / "docs" / "monitoring.md"
EMPTY_WHILE_HEALTHY = "# empty while healthy"
BROKEN = DEMO_TABLES[1]
SINGLE_VALUE_PANELS = {"stat", "gauge", "bargauge"}


def panels(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(panel, in the repeated row) for every data panel, rows' own panels included."""
    out = []
    repeated = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            repeated = bool(panel.get("repeat"))
            out += [(p, True) for p in panel.get("panels", []) if repeated]
            continue
        out.append((panel, repeated))
    return out


def substitute(expr: str, table: str = ".*", stale_after: str | None = None) -> str:
    """The query Grafana sends: template variables replaced (``stale_after``: the dashboard's
    constant unless given)."""
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    constants = {v["name"]: v["query"] for v in dashboard["templating"]["list"]}
    for variable, value in (
        ("${table}", table),
        ("$table", table),
        ("$pipeline", "default"),
        ("$stale_after", stale_after or constants["stale_after"]),
    ):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def guide_queries() -> list[str]:
    """The ```promql blocks of the monitoring guide (PromQL cookbook and SLOs)."""
    return [m.strip() for m in re.findall(r"```promql\n(.*?)```", GUIDE.read_text(), re.DOTALL)]


def scraped(prometheus, pushgateway) -> None:
    """Wait until Prometheus holds the Pushgateway's state of the last tick (its heartbeat), so
    each step of the history is a sample of its own and increase()/rate() see every change."""
    beat = pushed(pushgateway, "offload_heartbeat_timestamp_seconds")
    deadline = time.monotonic() + 60
    while True:
        seen = promql(prometheus, "offload_heartbeat_timestamp_seconds")
        if seen and float(seen[0]["value"][1]) == beat:
            return
        assert time.monotonic() < deadline, "Prometheus did not scrape the last tick"
        time.sleep(0.3)


def build_history(project, pushgateway, prometheus) -> None:
    """Successes, a maintenance, late rows and a table that fails three times, with ticks
    Prometheus sees."""
    for table in DEMO_TABLES:
        project.seed(2_000, table=table)
    assert all(o.success for o in cycle(project))
    assert all(o.success for o in maintenance(project))
    tick(project)
    scraped(prometheus, pushgateway)
    time.sleep(1.1)  # the heartbeat has second resolution in Prometheus' view of changes

    for table in DEMO_TABLES:
        project.seed(500, table=table)
        watermark = project.state(table).watermark.cursor.ts
        project.seed(500, table=table, late_fraction=0.3, watermarks={table: watermark})
    assert all(o.success for o in cycle(project))
    tick(project)
    scraped(prometheus, pushgateway)
    time.sleep(1.1)

    break_table(project, BROKEN)
    for _ in range(3):
        assert not cycle(project, [BROKEN])[0].success
    # back in place: the hot tier is measurable again, the three failures stay on record
    mend_table(project, BROKEN)
    for _ in range(3):
        tick(project)
        scraped(prometheus, pushgateway)
        time.sleep(1.1)


def test_every_dashboard_query_returns_data(project, pushgateway, prometheus):
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    build_history(project, pushgateway, prometheus)

    deadline = time.monotonic() + 30
    while not promql(prometheus, "offload_heartbeat_timestamp_seconds"):
        assert time.monotonic() < deadline, "Prometheus never scraped the Pushgateway"
        time.sleep(0.5)

    assert sorted(variable_values(dashboard, "table", prometheus)) == sorted(DEMO_TABLES)

    queries: list[tuple[str, str]] = []
    for panel, repeated in panels(dashboard):
        for target in panel["targets"]:
            queries.append((panel["title"], substitute(target["expr"])))
            if repeated:  # a repeated row asks for one table at a time
                queries += [(panel["title"], substitute(target["expr"], t)) for t in DEMO_TABLES]
    expressions = {t["expr"] for p, _ in panels(dashboard) for t in p["targets"]}
    assert len(expressions) >= 25

    # the guide's queries: all valid, and those not marked empty-while-healthy return data here
    cookbook = guide_queries()
    assert len(cookbook) >= 10
    for query in cookbook:
        promql(prometheus, query)  # a malformed query fails here (HTTP 400)
    queries += [("docs/monitoring.md", q) for q in cookbook if EMPTY_WHILE_HEALTHY not in q]

    # rates need two scrapes and the alert one evaluation: retry for up to a minute
    pending = list(queries)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        pending = [(title, q) for title, q in pending if not promql(prometheus, q)]
        if pending:
            time.sleep(1)
    assert not pending, "dashboard queries without data:\n" + "\n".join(
        f"{title}: {q}" for title, q in pending
    )
    print(
        f"{len(queries)} queries returned data: {len(expressions)} distinct dashboard targets, "
        f"{len(cookbook)} guide queries"
    )

    # the values are the history above, not just any series
    (failures,) = promql(prometheus, f'offload_consecutive_failures{{table="{BROKEN}"}}')
    assert float(failures["value"][1]) == 3
    firing = promql(prometheus, 'ALERTS{alertstate="firing", alertname=~"IcebergOffload.*"}')
    assert {"IcebergOffloadConsecutiveFailures"} <= {a["metric"]["alertname"] for a in firing}
    late = promql(prometheus, "sum(increase(offload_late_rows_total[1h]))")
    assert late and float(late[0]["value"][1]) > 0
    # the top-N panel ranks every table, whatever $table picks: the failing one first
    (streaks,) = [
        t["expr"]
        for p, _ in panels(dashboard)
        if p["title"] == "Longest failure streaks"
        for t in p["targets"]
    ]
    ranked = promql(prometheus, substitute(streaks, table="no-such-table"))
    assert [r["metric"]["table"] for r in ranked][0] == BROKEN
    assert [float(r["value"][1]) for r in ranked] == [3] + [0] * (len(DEMO_TABLES) - 1)


def variable_values(dashboard: dict[str, Any], name: str, prometheus) -> list[str]:
    """What Grafana lists for a ``label_values(selector, label)`` query variable."""
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    found = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
    assert found, variable["query"]
    selector, label = substitute(found[1]), found[2]
    match = urllib.parse.urlencode({"match[]": selector})
    values: list[str] = http_json(f"{prometheus.url}/api/v1/label/{label}/values?{match}")["data"]
    return values


def test_a_table_whose_hot_tier_cannot_be_read_is_listed(project, pushgateway, prometheus):
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    for table in DEMO_TABLES:
        project.seed(100, table=table)
    break_table(project, BROKEN)  # before its first run: nothing about it was ever measured
    tick(project)
    scraped(prometheus, pushgateway)
    # the sensor could not measure it ...
    assert not promql(prometheus, f'offload_source_max_timestamp_seconds{{table="{BROKEN}"}}')
    assert pushed(pushgateway, "offload_source_max_timestamp_seconds", table=BROKEN) is None
    # ... and the $table variable still lists it, beside the readable tables
    assert sorted(variable_values(dashboard, "table", prometheus)) == sorted(DEMO_TABLES)


def single_value_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, raw expr) of the single-value panels that read pushed values through the
    freshness guard."""
    return [
        (panel["title"], target["expr"])
        for panel, _ in panels(dashboard)
        if panel["type"] in SINGLE_VALUE_PANELS
        for target in panel["targets"]
        if "$stale_after" in target["expr"]
    ]


def test_single_value_panels_show_no_data_once_their_series_is_stale(
    project, pushgateway, prometheus
):
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    table = DEMO_TABLES[0]
    for each in DEMO_TABLES:
        project.seed(500, table=each)
    assert all(o.success for o in cycle(project))
    tick(project)
    scraped(prometheus, pushgateway)
    guarded = single_value_queries(dashboard)
    assert len(guarded) >= 8
    heartbeat_age = [
        t["expr"]
        for p, _ in panels(dashboard)
        if p["type"] == "stat" and p["title"] == "Heartbeat age"
        for t in p["targets"]
    ]

    def empty(stale_after: str | None = None) -> list[str]:
        return [
            title
            for title, expr in guarded
            if not promql(prometheus, substitute(expr, table, stale_after))
        ]

    # fresh: every guarded panel shows its value
    assert empty() == []
    # nobody pushes for longer than the staleness limit (here 2 s instead of the 180 s default):
    # every pushed value reads as no data, while the ages that show the silence keep a value
    time.sleep(3)
    assert sorted(empty("2")) == sorted(title for title, _ in guarded)
    (age,) = promql(prometheus, substitute(heartbeat_age[0]))
    assert float(age["value"][1]) >= 2

    # a group deleted from the Pushgateway (as the sensor does for a removed table): Prometheus
    # marks its series stale and the instant queries return nothing, whatever the limit
    assert empty() == []
    assert delete_group(pushgateway.url, group_key("default", table))
    deadline = time.monotonic() + 30
    per_table = [(t, e) for t, e in guarded if "table=~" in e]
    while [t for t, e in per_table if promql(prometheus, substitute(e, table))]:
        assert time.monotonic() < deadline, "deleted table still shown"
        time.sleep(0.5)
    # the other tables still show theirs
    other = DEMO_TABLES[2]
    assert all(promql(prometheus, substitute(e, other)) for _, e in per_table)
