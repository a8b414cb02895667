"""Static checks of the Grafana dashboard and its provisioning (docker/grafana/).

What a Grafana instance would reject or silently render empty: layout, datasource references,
units, metric names and kinds, and thresholds that drift from docker/prometheus/thresholds.yml.
That every query returns data is checked live in tests/e2e/test_dashboard_queries.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from offload_pipeline.metrics.contract import BY_NAME, METRICS
from tests.scripts import load_script

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docker" / "grafana"
DASHBOARD_FILE = GRAFANA / "dashboards" / "iceberg-offload.json"
BUILD_SCRIPT = GRAFANA / "build_dashboard.py"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
THRESHOLDS_FILE = ROOT / "docker" / "prometheus" / "thresholds.yml"
RULES_FILE = ROOT / "docker" / "prometheus" / "rules" / "iceberg-offload-alerts.yml"
RUNBOOKS_DIR = ROOT / "docs" / "runbooks"
RUNBOOK_LINK_PREFIX = "${runbooks}/"

# series Prometheus and the Pushgateway make themselves, not pushed by the pipeline
BUILTIN_SERIES = {
    "ALERTS",
    "ALERTS_FOR_STATE",
    "up",
    "push_time_seconds",
    "push_failure_time_seconds",
}
SINGLE_VALUE_PANELS = {"stat", "gauge", "bargauge"}
# the offload runs every 15 minutes: a window over its counters spans several runs
MIN_WINDOW_SECONDS = 3600
PROMQL_WORDS = {
    "sum",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "time",
    "or",
    "and",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "bottomk",
    "sort_desc",
    "abs",
    "changes",
    "absent",
    "clamp_min",
    "le",
    "vector",
}
# which thresholds.yml keys a panel showing this metric must use
PANEL_THRESHOLDS = {
    "offload_lag_seconds": {"lag_warning_seconds", "lag_critical_seconds"},
    "offload_heartbeat_timestamp_seconds": {"heartbeat_max_age_seconds"},
    "offload_consecutive_failures": {"consecutive_failures"},
    "offload_runs_total": {"success_rate_min"},
    "offload_rows_per_second_bucket": {"throughput_min_rows_per_second"},
}
REQUIRED_KEYS = {
    "uid",
    "title",
    "schemaVersion",
    "panels",
    "templating",
    "time",
    "refresh",
    "tags",
    "links",
    "annotations",
    "editable",
    "version",
}
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge", "row"}


def load_build_script() -> ModuleType:
    return load_script(BUILD_SCRIPT)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


@pytest.fixture(scope="module")
def thresholds() -> dict[str, float]:
    return yaml.safe_load(THRESHOLDS_FILE.read_text())


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels of collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in data_panels(dashboard) for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression (label matchers, strings and ranges removed)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^{}]*\}", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\$\{?\w+\}?", "", stripped)  # template variables
    stripped = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped))
    return {n for n in names if n not in PROMQL_WORDS}


def contract_series(name: str) -> str | None:
    """The contract metric a series name belongs to, or None."""
    if name in BY_NAME:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and base in BY_NAME and BY_NAME[base].kind == "histogram":
            return base
    return None


def test_the_committed_json_is_the_build_script_output():
    module = load_build_script()
    assert module.render() == DASHBOARD_FILE.read_text(), (
        "stale dashboard: run python docker/grafana/build_dashboard.py"
    )
    # the script reads the thresholds without a YAML library; it must read what YAML reads
    assert module.read_thresholds() == yaml.safe_load(THRESHOLDS_FILE.read_text())
    check = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_fails_on_a_stale_or_missing_dashboard(tmp_path):
    module = load_build_script()
    module.OUTPUT = tmp_path / "iceberg-offload.json"
    assert module.main(["--check"]) == 1
    fresh = json.loads(module.render())
    fresh["panels"][1]["targets"][0]["expr"] += " > 0"
    module.OUTPUT.write_text(json.dumps(fresh, indent=2, sort_keys=True) + "\n")
    assert module.main(["--check"]) == 1
    module.OUTPUT.write_text(module.render())
    assert module.main(["--check"]) == 0


def test_dashboard_identity_and_settings(dashboard):
    assert REQUIRED_KEYS <= dashboard.keys()
    assert dashboard["uid"] == "iceberg-offload"
    assert dashboard["title"] == "Iceberg Offload Pipeline"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["refresh"] == "30s"
    assert dashboard["tags"] == ["iceberg", "offload", "dagster"]
    assert dashboard["time"]["from"] == "now-6h"
    urls = {link["url"] for link in dashboard["links"]}
    assert RUNBOOK_LINK_PREFIX + "README.md" in urls
    assert "http://localhost:3000" in urls


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(dashboard):
    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        assert p["type"] in PANEL_TYPES, p["type"]
        pos = p["gridPos"]
        assert {"h", "w", "x", "y"} <= pos.keys(), p["title"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, p["title"]
        assert pos["x"] + pos["w"] <= 24, f"{p['title']} is wider than the 24 columns"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_rows_and_the_repeated_table_row(dashboard):
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    repeated = [r for r in rows if r.get("repeat")]
    assert [r["repeat"] for r in repeated] == ["table"]
    assert all(not r["collapsed"] and not r.get("panels") for r in rows if r not in repeated)
    # the repeated row is the last one, collapsed with its panels inside it: opening the
    # dashboard queries none of them, at 10 tables or 1,000
    assert dashboard["panels"][-1] is repeated[0]
    assert repeated[0]["collapsed"] is True
    assert len(repeated[0]["panels"]) >= 10
    assert all(p["type"] != "row" for p in repeated[0]["panels"])


TOPK = re.compile(r"^sort_desc\(topk\((\d+), (.*)\)\)$", re.DOTALL)


def top_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in data_panels(dashboard) if any(TOPK.match(e) for e in exprs_of(p))]


def test_top_n_panels_rank_every_table_with_a_bounded_n(dashboard):
    """At 1,000 tables the overview must not draw a bar or a row per table: the top-N panels
    show the few worst tables of the whole pipeline, whatever ``$table`` picks."""
    top = top_panels(dashboard)
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert rows[1]["title"] == "Top 10 tables" and not rows[1]["collapsed"]
    shown = {
        "offload_lag_seconds",
        "offload_consecutive_failures",
        "offload_last_success_timestamp_seconds",
        "offload_reconciliation_delta_rows",
    }
    assert shown <= {n for p in top for e in exprs_of(p) for n in metric_names(e)}
    for p in top:
        assert p["type"] == "bargauge", p["title"]
        (target,) = p["targets"]
        n, inner = TOPK.match(target["expr"]).groups()  # type: ignore[union-attr]
        assert 1 <= int(n) <= 20, p["title"]
        assert "$table" not in inner and "${table}" not in inner, p["title"]
        assert inner.count('table!=""') == 2, p["title"]  # the metric and its freshness guard
        assert target["instant"] is True and target["format"] == "time_series", p["title"]


def test_every_target_uses_the_provisioned_datasource(dashboard):
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (prometheus,) = [d for d in provisioned if d["type"] == "prometheus"]
    assert prometheus["isDefault"] is True
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds_var = variables["datasource"]
    assert ds_var["type"] == "datasource" and ds_var["query"] == "prometheus"
    assert ds_var["current"]["value"] == prometheus["uid"]
    for p in data_panels(dashboard):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert t["expr"].strip() and t["refId"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]


def test_the_table_variable(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    table = variables["table"]
    assert table["type"] == "query"
    assert table["datasource"]["uid"] == "${datasource}"
    # a counter the sensor pushes for every configured table from the event log, readable hot
    # tier or not (tests/e2e/test_dashboard_queries.py lists a table whose hot tier is gone)
    assert table["query"]["query"] == (
        'label_values(offload_runs_total{job="iceberg_offload", pipeline="$pipeline"}, table)'
    )
    assert BY_NAME["offload_runs_total"].scope == "table"
    # no All, and no saved pick: Grafana opens on the first table, so the repeated row never
    # starts as 1,000 copies; the user picks more
    assert table["multi"] is True and table["includeAll"] is False
    assert "allValue" not in table and "current" not in table


def test_one_pipeline_at_a_time(dashboard):
    # deployments sharing a Prometheus may have tables of the same name: a query over several
    # pipelines would add them together in every `sum by (table)`
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    pipeline = variables["pipeline"]
    assert pipeline["multi"] is False and pipeline["includeAll"] is False
    assert pipeline["current"]["value"] == "default"
    for expr in expressions(dashboard):
        if "offload_" in expr:
            selectors = re.findall(r'(?<!\$)\{((?:[^{}"]|"[^"]*")*)\}', expr)
            offload = [s for s in selectors if "iceberg_offload" in s]
            assert offload and all('pipeline="$pipeline"' in s for s in offload), expr


def test_per_table_queries_filter_by_the_table_variable(dashboard):
    ranked = {e for p in top_panels(dashboard) for e in exprs_of(p)}
    for expr in expressions(dashboard):
        if expr in ranked:  # the top-N panels rank all tables (see the test above)
            continue
        per_table = any(
            (base := contract_series(n)) and BY_NAME[base].scope == "table"
            for n in metric_names(expr)
        )
        if per_table:
            selectors = re.findall(r'(?<!\$)\{((?:[^{}"]|"[^"]*")*)\}', expr)
            assert selectors and all(
                re.search(r'table=~"\$(?:table|\{table\})"', s) for s in selectors
            ), expr


def test_provisioning_files():
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]
    assert all(p["type"] == "file" for p in providers)
    datasources = yaml.safe_load(DATASOURCES.read_text())
    assert datasources["apiVersion"] == 1
    (prometheus,) = datasources["datasources"]
    assert prometheus["url"] == "http://prometheus:9090"


def test_every_panel_has_a_unit(dashboard):
    for p in data_panels(dashboard):
        assert p["fieldConfig"]["defaults"].get("unit"), f"{p['title']} has no unit"


def recording_rules() -> set[str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def test_metric_names_exist_and_histograms_are_never_bare(dashboard):
    recorded = recording_rules()
    for expr in expressions(dashboard):
        for name in metric_names(expr):
            if name in BUILTIN_SERIES or name in recorded:
                continue
            base = contract_series(name)
            assert base is not None, f"{name} is not a contract metric ({expr})"
            assert BY_NAME[base].kind != "histogram" or name != base, (
                f"bare histogram name {name}: use _bucket, _sum or _count ({expr})"
            )


def test_no_rate_or_increase_over_a_gauge(dashboard):
    gauges = {m.name for m in METRICS if m.kind == "gauge"}
    for expr in expressions(dashboard):
        for func, name in re.findall(r"\b(rate|irate|increase|delta)\s*\(\s*([A-Za-z_:]\w*)", expr):
            assert name not in gauges, f"{func}() over the gauge {name}: {expr}"
            base = contract_series(name)
            assert base and (BY_NAME[base].kind == "counter" or name != base), expr
            assert func != "delta", f"delta() is for gauges, never counters: {expr}"


def seconds(duration: str) -> int:
    """A PromQL duration of one unit (90s, 5m, 1h, 2d) in seconds."""
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    assert match, f"not a fixed duration: {duration}"
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def test_counter_windows_span_several_runs(dashboard):
    # the counters move once per 15-minute run: a short window ($__rate_interval, 5m) is empty
    # between runs and spikes at each one
    for expr in expressions(dashboard):
        assert "$__rate_interval" not in expr and "$__interval" not in expr, expr
        assert not re.search(r"\birate\s*\(", expr), expr
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert seconds(window) >= MIN_WINDOW_SECONDS, f"window {window} in {expr}"
    for name in recording_rules():
        assert name.endswith(":1h"), name


def test_windows_have_the_alerts_lengths(dashboard, thresholds):
    windows = {
        f"{int(thresholds[k]) // 3600}h"
        for k in ("success_rate_window_seconds", "late_rows_window_seconds")
    }
    for expr in expressions(dashboard):
        for window in re.findall(r"\b(?:rate|increase)\s*\([^\[]*\[([^\]]+)\]", expr):
            assert window in windows, f"window {window} in {expr}"


def test_success_rate_is_summed_per_table_before_dividing(dashboard):
    for expr in expressions(dashboard):
        if "offload_runs_total" in expr and "/" in expr:
            for call in re.findall(r"increase\(offload_runs_total[^)]*\)", expr):
                assert re.search(r"sum by \(table\) \(" + re.escape(call), expr), expr


def threshold_values(panel: dict[str, Any]) -> set[float]:
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    return {s["value"] for s in steps if s["value"] is not None}


def test_thresholds_come_from_thresholds_yml_and_match_the_rules(dashboard, thresholds):
    rules = RULES_FILE.read_text()
    known = set(thresholds.values())
    for p in data_panels(dashboard):
        for value in threshold_values(p):
            assert value in known, f"{p['title']}: threshold {value} not in thresholds.yml"
            literal = re.escape(f"{value:g}")
            assert re.search(rf"(?<![\w.]){literal}(?![\w.])", rules), (
                f"{p['title']}: threshold {value} does not appear in the alert rules"
            )
    for metric, keys in PANEL_THRESHOLDS.items():
        expected = {thresholds[k] for k in keys}
        showing = [p for p in data_panels(dashboard) if any(metric in e for e in exprs_of(p))]
        assert showing, f"no panel shows {metric}"
        assert any(threshold_values(p) == expected for p in showing), (
            f"no panel of {metric} has the thresholds {sorted(expected)}"
        )
    cycle = {thresholds["cycle_slow_seconds"], thresholds["cycle_too_slow_seconds"]}
    last_cycle = [
        p
        for p in data_panels(dashboard)
        if any("offload_last_cycle_duration_seconds" in e for e in exprs_of(p))
    ]
    assert last_cycle and all(threshold_values(p) == cycle for p in last_cycle)
    # the lag thresholds are the ones the lag alerts use
    assert f"> {thresholds['lag_critical_seconds']}" in rules
    assert f"> {thresholds['lag_warning_seconds']}" in rules


def exprs_of(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def test_the_required_panels_are_there(dashboard):
    exprs = "\n".join(expressions(dashboard))
    for needle in (
        "offload_lag_seconds",
        "increase(offload_runs_total",
        "offload_tables_configured",
        "iceberg_offload:rows_rate:1h",
        "iceberg_offload:duration_avg:1h",
        "iceberg_offload:cycle_count:1h",
        "offload_duration_seconds_bucket",
        "offload_last_cycle_duration_seconds",
        "increase(offload_errors_total",
        "offload_rows_per_second_bucket",
        "time() - offload_watermark_timestamp_seconds",
        "offload_consecutive_failures",
        "increase(offload_late_rows_total",
        "time() - offload_heartbeat_timestamp_seconds",
        "offload_iceberg_small_file_ratio",
        "offload_last_maintenance_timestamp_seconds",
        "offload_reconciliation_delta_rows",
        'ALERTS{alertstate="firing", alertname=~"IcebergOffload.*", '
        'alertname!="IcebergOffloadWatchdog"}',
        'up{job="pushgateway"}',
        "push_failure_time_seconds",
        'ALERTS{alertname="IcebergOffloadWatchdog", alertstate="firing"}',
    ):
        assert needle in exprs, f"no panel queries {needle}"
    for q in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({q}, sum by (le, table) (increase(offload_duration_seconds_bucket"
            in exprs
        )


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_monitoring_guide_describes_every_panel_and_links_real_runbooks(dashboard):
    guide = (ROOT / "docs" / "monitoring.md").read_text()
    repeated = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            repeated = bool(panel.get("repeat"))
            continue
        if not repeated:
            assert f"| {panel['title']} |" in guide, f"docs/monitoring.md lacks {panel['title']}"
    rules = yaml.safe_load(RULES_FILE.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for alert in alerts:
        assert f"| `{alert}` |" in guide, f"docs/monitoring.md: {alert} missing in the alert table"
    links = re.findall(r"\]\(runbooks/([\w-]+\.md)#([\w-]+)\)", guide)
    assert links
    for page, anchor in links:
        text = (ROOT / "docs" / "runbooks" / page).read_text()
        anchors = {heading_anchor(h) for h in re.findall(r"^#+\s+(.+)$", text, re.MULTILINE)}
        assert anchor in anchors, f"docs/monitoring.md links {page}#{anchor}, no such heading"


def test_single_value_panels_show_no_data_for_stale_series(dashboard, thresholds):
    """A stat must not stay green on a value nobody refreshes: the newest sample only (``last``,
    never ``lastNotNull``), instant queries (a series Prometheus marked stale returns nothing),
    and a pushed value only while its Pushgateway group was pushed within ``$stale_after``."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["stale_after"]["type"] == "constant"
    assert float(variables["stale_after"]["query"]) == thresholds["heartbeat_max_age_seconds"]
    guarded = 0
    for p in data_panels(dashboard):
        if p["type"] not in SINGLE_VALUE_PANELS:
            continue
        assert p["options"]["reduceOptions"]["calcs"] == ["last"], p["title"]
        for t in p["targets"]:
            assert t.get("instant") is True and not t.get("range"), p["title"]
            assert t["format"] == "time_series", p["title"]
            # a top-N panel: the guard is inside topk, so a stale table is not ranked
            expr = TOPK.sub(r"\2", t["expr"])
            pushed = [n for n in metric_names(expr) if contract_series(n)]
            # ages (time() - a timestamp) grow on their own, windows count to 0: neither can
            # show an old value as current
            relative = expr.startswith("time() -") or re.search(r"\bincrease\(", expr)
            if pushed and not relative:
                guarded += 1
                assert re.search(
                    r"\n  and on \(job, pipeline(?:, table)?\)\n"
                    r"\(time\(\) - push_time_seconds\{.*\} < \$stale_after\)$",
                    expr,
                ), f"{p['title']}: no freshness guard in {expr}"
    assert guarded >= 8


def runbook_links(dashboard: dict[str, Any]) -> list[str]:
    """Every link of the dashboard and of its panels that points into the runbooks."""
    links = [link["url"] for link in dashboard["links"]]
    links += [link["url"] for p in all_panels(dashboard) for link in p.get("links", [])]
    return [url for url in links if "runbook" in url.lower() or url.endswith(".md")] + [
        url for url in links if "github.com" in url
    ]


def test_runbook_links_start_at_the_configurable_base_and_resolve(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    runbooks = variables["runbooks"]
    assert runbooks["type"] == "textbox"
    assert runbooks["query"] == runbooks["current"]["value"] == "docs/runbooks"
    assert "github.com" not in json.dumps(dashboard)
    links = runbook_links(dashboard)
    assert len(links) >= 10
    for url in links:
        assert url.startswith(RUNBOOK_LINK_PREFIX), url
        page, _, anchor = url.removeprefix(RUNBOOK_LINK_PREFIX).partition("#")
        path = RUNBOOKS_DIR / page
        assert path.is_file(), f"{url}: no {path.relative_to(ROOT)}"
        if anchor:
            text = path.read_text()
            anchors = {heading_anchor(h) for h in re.findall(r"^#+\s+(.+)$", text, re.MULTILINE)}
            assert anchor in anchors, f"{url}: no such heading in {page}"


def test_the_runbooks_url_is_a_build_setting(tmp_path):
    module = load_build_script()
    module.OUTPUT = tmp_path / "iceberg-offload.json"
    assert module.main(["--runbooks-url", "https://docs.example.org/offload/runbooks/"]) == 0
    built = json.loads(module.OUTPUT.read_text())
    variables = {v["name"]: v for v in built["templating"]["list"]}
    assert variables["runbooks"]["query"] == "https://docs.example.org/offload/runbooks"
    assert runbook_links(built) == runbook_links(json.loads(DASHBOARD_FILE.read_text()))
    # the committed file is the default build, and --check says a custom one differs from it
    module.OUTPUT = DASHBOARD_FILE
    assert module.main(["--check"]) == 0
    assert module.main(["--check", "--runbooks-url", "https://docs.example.org/"]) == 1
