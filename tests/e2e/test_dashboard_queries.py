"""Live: every query of the Grafana dashboard returns data from a real Prometheus.

A real offload history (successes, late rows, a table failing three times) is pushed to a real
Pushgateway and scraped by a real Prometheus with the project's rules. Then every target of every
panel in docker/grafana/dashboards/iceberg-offload.json, repeated-row panels included, is run
through the Prometheus HTTP API the way Grafana would send it, and must return at least one
series. The original deployment shipped panels that queried series nobody exported; this test
is what keeps that from happening again.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

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
# Grafana's variables as the test substitutes them: All tables, a 1-minute rate window (the
# test Prometheus scrapes every second)
RATE_INTERVAL = "1m"


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


def substitute(expr: str, table: str = ".*") -> str:
    """The query Grafana sends: template variables replaced."""
    for variable, value in (
        ("${table}", table),
        ("$table", table),
        ("$pipeline", "default"),
        ("${__rate_interval}", RATE_INTERVAL),
        ("$__rate_interval", RATE_INTERVAL),
        ("$__range", "1h"),
        ("$__interval", "15s"),
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

    # the $table variable: label_values(offload_source_max_timestamp_seconds, table)
    match = urllib.parse.urlencode({"match[]": "offload_source_max_timestamp_seconds"})
    values = http_json(f"{prometheus.url}/api/v1/label/table/values?{match}")["data"]
    assert sorted(values) == sorted(DEMO_TABLES)

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
