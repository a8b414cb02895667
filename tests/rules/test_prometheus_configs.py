"""Checks of the monitoring configuration in docker/ and docs/runbooks/.

Runs the real checkers (promtool, amtool) on the shipped files, and ties together what no checker
sees: the alert names of contract §5, the rules, their promtool tests, the runbook links and the
thresholds file.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_FILE = PROMETHEUS_DIR / "rules" / "iceberg-offload-alerts.yml"
THRESHOLDS_FILE = PROMETHEUS_DIR / "thresholds.yml"
ALERTMANAGER_CONFIG = ROOT / "docker" / "alertmanager" / "alertmanager.yml"
RUNBOOKS_DIR = ROOT / "docs" / "runbooks"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"
# CI checks out the shared design documents beside the clone
CONTRACT = ROOT.parent / "shared" / "design" / "contract.md"

RUNBOOK_URL_PREFIX = "https://github.com/offload-pipeline/offload_pipeline/blob/main/docs/runbooks/"

# contract §5, used when the contract document is not beside the clone
CONTRACT_ALERTS: dict[str, str] = {
    "IcebergOffloadConsecutiveFailures": "critical",
    "IcebergOffloadLagCritical": "critical",
    "IcebergOffloadLagElevated": "warning",
    "IcebergOffloadWatermarkStale": "critical",
    "IcebergOffloadCycleTooSlow": "critical",
    "IcebergOffloadCycleSlow": "warning",
    "IcebergOffloadSuccessRateLow": "warning",
    "IcebergOffloadThroughputLow": "warning",
    "IcebergOffloadSchedulerDown": "critical",
    "IcebergOffloadTableNotReporting": "warning",
    "IcebergOffloadPushgatewayDown": "critical",
    "IcebergOffloadMetricsPushFailing": "warning",
    "IcebergOffloadLateRows": "warning",
    "IcebergOffloadReconciliationMismatch": "warning",
    "IcebergOffloadMaintenanceOverdue": "warning",
}
# alerts on the monitoring chain itself (issue: a dead man's switch), beside contract §5. the
# watchdog is always firing, by design: it has no quiet case
CHAIN_ALERTS: dict[str, str] = {
    "IcebergOffloadWatchdog": "none",
    "IcebergOffloadAlertmanagerNotificationsFailing": "critical",
}
ALWAYS_FIRING = {"IcebergOffloadWatchdog"}
CONTRACT_RECORDING_RULES = (
    "iceberg_offload:cycle_count:1h",
    "iceberg_offload:duration_avg:1h",
    "iceberg_offload:rows_rate:1h",
)
# contract §3, used when the contract document is not beside the clone
CONTRACT_METRICS = (
    "offload_rows_total",
    "offload_runs_total",
    "offload_errors_total",
    "offload_late_rows_total",
    "offload_duration_seconds",
    "offload_rows_per_second",
    "offload_last_run_timestamp_seconds",
    "offload_last_success_timestamp_seconds",
    "offload_last_run_success",
    "offload_last_run_duration_seconds",
    "offload_last_run_rows",
    "offload_consecutive_failures",
    "offload_watermark_timestamp_seconds",
    "offload_source_max_timestamp_seconds",
    "offload_lag_seconds",
    "offload_watermark_advanced_timestamp_seconds",
    "offload_reconciliation_delta_rows",
    "offload_schema_changes_total",
    "offload_iceberg_snapshots",
    "offload_iceberg_data_files",
    "offload_last_maintenance_timestamp_seconds",
    "offload_cycles_total",
    "offload_cycle_duration_seconds",
    "offload_last_cycle_duration_seconds",
    "offload_tables_configured",
    "offload_info",
    "offload_heartbeat_timestamp_seconds",
)
# pipeline-wide metrics the project added after the contract's §3 table was written (the age of a
# running cycle, for IcebergOffloadCycleTooSlow): known to the rules ahead of the contract text
PROPOSED_METRICS = ("offload_cycle_running_since_timestamp_seconds",)
HISTOGRAMS = (
    "offload_duration_seconds",
    "offload_rows_per_second",
    "offload_cycle_duration_seconds",
)

# alerts about one table: their firing test cases must carry the `table` label
PER_TABLE_ALERTS = {
    "IcebergOffloadConsecutiveFailures",
    "IcebergOffloadLagCritical",
    "IcebergOffloadLagElevated",
    "IcebergOffloadWatermarkStale",
    "IcebergOffloadFutureRows",
    "IcebergOffloadSuccessRateLow",
    "IcebergOffloadThroughputLow",
    "IcebergOffloadTableNotReporting",
    "IcebergOffloadLateRows",
    "IcebergOffloadReconciliationMismatch",
    "IcebergOffloadMaintenanceOverdue",
}
# alerts about the whole pipeline: never a `table` label
PIPELINE_ALERTS = {
    "IcebergOffloadCycleTooSlow",
    "IcebergOffloadCycleSlow",
    "IcebergOffloadSchedulerDown",
    "IcebergOffloadPushgatewayDown",
    *CHAIN_ALERTS,
}
# IcebergOffloadMetricsPushFailing is per Pushgateway group: with `table` for table groups only

# which thresholds.yml keys each alert uses (expr, for and keep_firing_for)
ALERT_THRESHOLDS: dict[str, set[str]] = {
    "IcebergOffloadConsecutiveFailures": {"consecutive_failures", "restart_keep_firing_seconds"},
    "IcebergOffloadLagCritical": {
        "lag_critical_seconds",
        "lag_critical_for_seconds",
        "lag_keep_firing_seconds",
    },
    "IcebergOffloadLagElevated": {
        "lag_warning_seconds",
        "lag_critical_seconds",
        "lag_warning_for_seconds",
        "lag_keep_firing_seconds",
    },
    "IcebergOffloadWatermarkStale": {
        "watermark_stale_seconds",
        "watermark_stale_for_seconds",
        "restart_keep_firing_seconds",
    },
    "IcebergOffloadFutureRows": {"future_rows_seconds", "future_rows_for_seconds"},
    "IcebergOffloadCycleTooSlow": {"cycle_too_slow_seconds", "restart_keep_firing_seconds"},
    "IcebergOffloadCycleSlow": {
        "cycle_slow_seconds",
        "cycle_too_slow_seconds",
        "cycle_slow_for_seconds",
    },
    "IcebergOffloadSuccessRateLow": {
        "success_rate_min",
        "success_rate_min_attempts",
        "success_rate_window_seconds",
    },
    "IcebergOffloadThroughputLow": {"throughput_min_rows_per_second", "throughput_min_rows"},
    "IcebergOffloadSchedulerDown": {"heartbeat_max_age_seconds"},
    "IcebergOffloadTableNotReporting": {"not_reporting_seconds"},
    "IcebergOffloadPushgatewayDown": {"pushgateway_down_for_seconds"},
    "IcebergOffloadMetricsPushFailing": {"metrics_push_failing_for_seconds"},
    "IcebergOffloadLateRows": {"late_rows_window_seconds"},
    "IcebergOffloadReconciliationMismatch": set(),
    "IcebergOffloadMaintenanceOverdue": {"maintenance_max_age_seconds"},
    "IcebergOffloadWatchdog": set(),
    "IcebergOffloadAlertmanagerNotificationsFailing": {"notifications_failed_window_seconds"},
}
# comparisons with 0 and 1 are structure (non-zero, present, success flag), not thresholds
STRUCTURAL_NUMBERS = {0.0, 1.0}

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
MARKDOWN_LINK = re.compile(r"\]\(([\w.-]+\.md)(?:#([\w-]+))?\)")
NUMBER = re.compile(r"(?<![\w:.])(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(ms|s|m|h|d|w|y)?(?![\w.])")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH; install the Debian packages prometheus "
            "(promtool) and prometheus-alertmanager (amtool)"
        )
    return path


def _run(*args: str | Path, cwd: Path = ROOT) -> None:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(str(a) for a in args)} exited {result.returncode}\n"
        f"{result.stdout}\n{result.stderr}"
    )


def _contract_section(number: int) -> str | None:
    if not CONTRACT.is_file():
        return None
    text = CONTRACT.read_text(encoding="utf-8")
    match = re.search(rf"^## {number}\..*?(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"{CONTRACT.name} has no section {number}"
    return match.group(0)


def _contract_alerts() -> dict[str, str]:
    """Alert name -> severity: contract §5 and the monitoring chain's own alerts."""
    section = _contract_section(5)
    if section is None:
        return {**CONTRACT_ALERTS, **CHAIN_ALERTS}
    rows = re.findall(
        r"^\|\s*`(IcebergOffload\w+)`\s*\|\s*(critical|warning|none)\s*\|", section, re.M
    )
    assert rows, "no alert table found in contract §5"
    return {**CHAIN_ALERTS, **dict(rows)}


def _documented_alerts() -> dict[str, str]:
    """The project's alert list (docs/monitoring.md): every contract §5 alert, and the ones the
    project adds."""
    text = MONITORING_DOC.read_text(encoding="utf-8")
    section = text[text.index("\n## Alerts\n") :]
    rows = re.findall(
        r"^\|\s*`(IcebergOffload\w+)`\s*\|\s*(critical|warning|none)\s*\|", section, re.M
    )
    assert rows, "no alert table found in docs/monitoring.md"
    return dict(rows)


def _contract_recording_rules() -> set[str]:
    section = _contract_section(5)
    if section is None:
        return set(CONTRACT_RECORDING_RULES)
    return set(re.findall(r"`(iceberg_offload:[\w:]+)`", section))


def _contract_metrics() -> set[str]:
    section = _contract_section(3)
    if section is None:
        return set(CONTRACT_METRICS) | set(PROPOSED_METRICS)
    return set(re.findall(r"^\|\s*`(offload_\w+)`", section, re.M)) | set(PROPOSED_METRICS)


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES_FILE)["groups"] for rule in group["rules"]]


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _test_files() -> list[Path]:
    files = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
    assert files, "no promtool test files in docker/prometheus/tests"
    return files


def _alert_cases() -> Iterator[dict[str, Any]]:
    for path in _test_files():
        for group in _load(path)["tests"]:
            yield from group.get("alert_rule_test") or []


def _seconds(duration: str) -> float:
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", str(duration)):
        total += float(value) * DURATION_UNITS[unit]
    return total


def _numbers(rule: dict[str, Any]) -> list[float]:
    """Every number and duration in a rule's expr, for and keep_firing_for, in seconds."""
    # label values are names, not numbers
    expr = re.sub(r'"[^"]*"', '""', rule["expr"])
    found = [
        float(value) * (DURATION_UNITS[unit] if unit else 1) for value, unit in NUMBER.findall(expr)
    ]
    found += [_seconds(rule[key]) for key in ("for", "keep_firing_for") if key in rule]
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a markdown heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_promtool_check_config() -> None:
    _run(_tool("promtool"), "check", "config", PROMETHEUS_CONFIG)


def test_promtool_check_rules() -> None:
    rule_files = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rule_files
    # the linter fails on duplicate rules too (one name with the same labels twice)
    _run(_tool("promtool"), "check", "rules", "--lint-fatal", *rule_files)


def test_promtool_unit_tests() -> None:
    _run(_tool("promtool"), "test", "rules", *_test_files())


def test_amtool_check_config() -> None:
    _run(_tool("amtool"), "check-config", ALERTMANAGER_CONFIG)


def test_commented_receiver_examples_are_valid(tmp_path: Path) -> None:
    # the Slack/PagerDuty/credentials examples are documentation; they must still load once enabled
    lines = ALERTMANAGER_CONFIG.read_text(encoding="utf-8").splitlines()
    start = lines.index("receivers:")
    end = lines.index("inhibit_rules:")
    enabled = [
        re.sub(r"^(\s{4,})# ?", r"\1", line) if start < i < end else line
        for i, line in enumerate(lines)
    ]
    assert enabled != lines, "no commented receiver examples found"
    config = tmp_path / "alertmanager.yml"
    config.write_text("\n".join(enabled) + "\n", encoding="utf-8")
    _run(_tool("amtool"), "check-config", config)
    receivers = _load(config)["receivers"]
    kinds = {kind for receiver in receivers for kind in receiver if kind.endswith("_configs")}
    assert {"slack_configs", "pagerduty_configs"} <= kinds


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=IcebergOffloadLagCritical", "severity=critical", "table=t"], ["pager"]),
        (["alertname=IcebergOffloadLagElevated", "severity=warning", "table=t"], ["default"]),
        (["alertname=IcebergOffloadSchedulerDown", "severity=critical"], ["pager"]),
        # the dead man's switch has a receiver of its own
        (["alertname=IcebergOffloadWatchdog", "severity=none"], ["watchdog"]),
        # failed deliveries reach every receiver, in case one of them is the broken one
        (
            ["alertname=IcebergOffloadAlertmanagerNotificationsFailing", "severity=critical"],
            ["default", "pager"],
        ),
    ],
)
def test_alertmanager_routes(labels: list[str], receivers: list[str]) -> None:
    result = subprocess.run(
        [_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}"]
        + labels,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == receivers


def _route(config: dict[str, Any], receiver: str) -> dict[str, Any]:
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == receiver]
    return {**config["route"], **route}


def test_alertmanager_grouping_and_paging_policy() -> None:
    config = _load(ALERTMANAGER_CONFIG)
    # one group (one notification, one incident) per Prometheus, pipeline and table: a stuck
    # table's failure, lag and watermark alerts travel together, and no alert name splits them
    assert config["route"]["group_by"] == ["cluster", "pipeline", "table"]
    pager = _route(config, "pager")
    assert pager["matchers"] == ['severity="critical"']
    assert 3600 <= _seconds(pager["repeat_interval"]) <= 6 * 3600
    assert _seconds(config["route"]["repeat_interval"]) >= _seconds(pager["repeat_interval"])
    watchdog = _route(config, "watchdog")
    # an outside heartbeat service expects a ping every few minutes
    assert _seconds(watchdog["repeat_interval"]) <= 600
    assert watchdog["receiver"] in {r["name"] for r in config["receivers"]}


def test_alertmanager_inhibition_stays_within_a_pipeline() -> None:
    inhibit = _load(ALERTMANAGER_CONFIG)["inhibit_rules"]
    for rule in inhibit:
        # a fault in one deployment never mutes another's alerts
        assert "cluster" in rule["equal"], rule
        sources = " ".join(rule["source_matchers"])
        if "PushgatewayDown" not in sources:
            assert "pipeline" in rule["equal"], rule
        targets = " ".join(rule["target_matchers"])
        if "SchedulerDown" in sources:
            # its heartbeat proves the sensor ticks; a table's hook-pushed failures must page
            assert "ConsecutiveFailures" not in targets
            assert "IcebergOffload.+" not in targets
    by_source = {" ".join(r["source_matchers"]): r for r in inhibit}
    stuck = by_source['alertname="IcebergOffloadConsecutiveFailures"']
    assert "IcebergOffloadLagCritical" in stuck["target_matchers"][0]
    assert "IcebergOffloadWatermarkStale" in stuck["target_matchers"][0]
    assert stuck["equal"] == ["cluster", "pipeline", "table"]


def test_alertmanager_secrets_only_from_files() -> None:
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    live = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for key in ("api_url", "routing_key", "service_key", "credentials", "password", "api_key"):
        assert not re.search(rf"^\s*-?\s*{key}\s*:", live, re.M), f"inline secret key {key}"


def test_prometheus_config_shape() -> None:
    config = _load(PROMETHEUS_CONFIG)
    # a critical alert must not wait for a 5-minute evaluation
    assert _seconds(config["global"]["evaluation_interval"]) <= 60
    for group in _load(RULES_FILE)["groups"]:
        assert _seconds(group.get("interval", "15s")) <= 60, group["name"]
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["pushgateway"]["static_configs"][0]["targets"] == ["pushgateway:9091"]
    assert {"prometheus", "alertmanager"} <= set(jobs)
    # deployments whose Prometheus servers share an Alertmanager stay apart
    assert config["global"]["external_labels"]["cluster"]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]


def test_alert_names_match_the_contract() -> None:
    contract = _contract_alerts()
    documented = _documented_alerts()
    assert contract.items() <= documented.items(), "contract §5 alerts missing in monitoring.md"
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert names - documented.keys() == set(), "alerts that are not in docs/monitoring.md"
    assert documented.keys() - names == set(), "documented alerts without a rule"
    for rule in rules:
        assert rule["labels"]["severity"] == documented[rule["alert"]], rule["alert"]


def test_recording_rules_match_the_contract() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    assert recorded == _contract_recording_rules()


def test_rules_use_contract_metric_names_only() -> None:
    known = _contract_metrics()
    known |= {f"{name}_{suffix}" for name in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    for rule in _rules():
        used = set(re.findall(r"\boffload_\w+", rule["expr"]))
        assert used <= known, f"{rule.get('alert') or rule.get('record')}: {used - known}"
        for name in HISTOGRAMS:
            # a histogram's base name has no series (the original cycle alerts used it)
            assert not re.search(rf"\b{name}\b(?!_)", rule["expr"]), name


def test_every_alert_is_labelled_and_annotated() -> None:
    for rule in _alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}, name
        # table comes from the metric, never a fixed value
        assert "table" not in rule["labels"], name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), name
        if not rule["expr"].lstrip().startswith("absent("):
            assert "$value" in annotations["description"], f"{name}: description lacks the value"
        # a per-table rule names its table, unless it counts tables (no table label left)
        if name in PER_TABLE_ALERTS and "count by (job, pipeline)" not in rule["expr"]:
            assert "$labels.table" in annotations["description"], name


def test_runbook_urls_resolve() -> None:
    for rule in _alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL_PREFIX), url
        file_name, _, anchor = url[len(RUNBOOK_URL_PREFIX) :].partition("#")
        path = RUNBOOKS_DIR / file_name
        assert path.is_file(), f"{rule['alert']}: {path.relative_to(ROOT)} does not exist"
        assert anchor, f"{rule['alert']}: runbook_url has no anchor"
        assert anchor in _anchors(path), f"{rule['alert']}: no heading #{anchor} in {file_name}"


def test_runbook_links_resolve() -> None:
    runbooks = sorted(RUNBOOKS_DIR.glob("*.md"))
    assert RUNBOOKS_DIR / "README.md" in runbooks
    index = (RUNBOOKS_DIR / "README.md").read_text(encoding="utf-8")
    for path in runbooks:
        if path.name != "README.md":
            assert f"]({path.name}" in index, f"README.md does not index {path.name}"
        for target, anchor in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            linked = RUNBOOKS_DIR / target
            assert linked.is_file(), f"{path.name} links to missing {target}"
            if anchor:
                assert anchor in _anchors(linked), f"{path.name} links to missing #{anchor}"


def test_failures_runbook_lists_every_error_type() -> None:
    text = (RUNBOOKS_DIR / "failures.md").read_text(encoding="utf-8")
    section = _contract_section(4) or ""
    error_types = set(re.findall(r"`([a-z_]+)`", section.split("\n", 1)[-1])) - {"error_type"}
    error_types |= {
        "source_unavailable",
        "source_query",
        "schema_mismatch",
        "catalog_unavailable",
        "commit_conflict",
        "write_failed",
        "timeout",
        "config_invalid",
        "run_failure",
        "unknown",
    }
    for error_type in error_types:
        assert re.search(rf"^\|\s*`{error_type}`\s*\|", text, re.M), error_type


def test_thresholds_match_the_rules() -> None:
    thresholds = {key: float(value) for key, value in _load(THRESHOLDS_FILE).items()}
    used = set().union(*ALERT_THRESHOLDS.values())
    assert used == thresholds.keys(), "thresholds.yml keys and the rules' use of them differ"
    assert ALERT_THRESHOLDS.keys() == {rule["alert"] for rule in _alert_rules()}
    for name, keys in ALERT_THRESHOLDS.items():
        allowed = {thresholds[key] for key in keys} | STRUCTURAL_NUMBERS
        numbers = [n for rule in _alert_rules() if rule["alert"] == name for n in _numbers(rule)]
        for number in numbers:
            assert any(math.isclose(number, a) for a in allowed), (
                f"{name}: {number:g} is not in thresholds.yml ({sorted(keys)})"
            )
        for key in keys:
            assert any(math.isclose(thresholds[key], n) for n in numbers), (
                f"{name}: threshold {key}={thresholds[key]:g} is not used"
            )


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _alert_cases():
        (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in _alert_rules()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - quiet - ALWAYS_FIRING == set(), "alerts without a quiet test case"


def test_firing_cases_check_labels_and_annotations() -> None:
    contract = _documented_alerts()
    with_table: set[str] = set()
    for case in _alert_cases():
        name = case["alertname"]
        for alert in case.get("exp_alerts") or []:
            labels = alert.get("exp_labels") or {}
            assert labels.get("severity") == contract[name], name
            assert {"summary", "description", "runbook_url"} <= (
                alert.get("exp_annotations") or {}
            ).keys(), f"{name}: test case does not check every annotation"
            if "table" in labels:
                with_table.add(name)
            if name in PIPELINE_ALERTS:
                assert "table" not in labels, name
    assert PER_TABLE_ALERTS - with_table == set(), "per-table alerts never tested with a table"


def test_every_recording_rule_is_tested() -> None:
    tested = {
        case["expr"]
        for path in _test_files()
        for group in _load(path)["tests"]
        for case in group.get("promql_expr_test") or []
    }
    for name in _contract_recording_rules():
        assert any(name in expr for expr in tested), name
