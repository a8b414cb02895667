"""Live: a real offload fails, the failure alert fires in Prometheus, Alertmanager delivers it to
a webhook, and it resolves once a run succeeds. Real binaries with the project's configs; only
ports, intervals and the webhook address are rewritten."""

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from offload_pipeline.demo.stack import (
    alertmanager_config,
    free_port,
    prometheus_config,
    start_alertmanager,
    start_prometheus,
)
from tests.conftest import DOCKER, promql
from tests.e2e.profile import use_fast_rules
from tests.e2e.test_metrics import break_table, cycle, mend_table, tick
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e
TABLE = DEMO_TABLES[0]
ALERT = "IcebergOffloadConsecutiveFailures"


class Webhook:
    """A local webhook receiver recording every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict]:
        return [
            alert
            for message in self.received
            for alert in message["alerts"]
            if alert["labels"]["alertname"] == name and alert["status"] == status
        ]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return result


def test_failure_alert_fires_reaches_the_webhook_and_resolves(project, pushgateway, tmp_path):
    webhook = Webhook()
    alertmanager = start_alertmanager(
        tmp_path / "alertmanager",
        alertmanager_config(
            DOCKER,
            webhook.url,
            {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        ),
    )
    port = free_port()
    prometheus = start_prometheus(
        tmp_path / "prometheus",
        # the generated fast profile: the failure alert keeps firing 10 s after the good run,
        # not the production 2 min
        use_fast_rules(
            prometheus_config(
                DOCKER, pushgateway.url, port, alertmanager=alertmanager.url, interval="1s"
            ),
            tmp_path / "rules",
        ),
        port,
    )
    try:
        project.seed(500, table=TABLE)
        assert cycle(project, [TABLE])[0].success
        tick(project)  # heartbeat: the scheduler-down alert would inhibit everything else

        break_table(project, TABLE)  # the hot-tier table disappears
        for _ in range(3):
            assert not cycle(project, [TABLE])[0].success
        tick(project)

        wait_for(
            lambda: promql(prometheus, f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}'),
            60,
            "the alert to fire in Prometheus",
        )
        (fired,) = wait_for(lambda: webhook.alerts(ALERT, "firing"), 60, "the webhook")
        assert fired["labels"]["table"] == TABLE
        assert fired["labels"]["severity"] == "critical"
        assert fired["annotations"]["runbook_url"].endswith(
            "docs/runbooks/failures.md#icebergoffloadconsecutivefailures"
        )
        assert "3 runs in a row" in fired["annotations"]["description"]

        mend_table(project, TABLE)
        assert cycle(project, [TABLE])[0].success
        tick(project)
        (resolved,) = wait_for(lambda: webhook.alerts(ALERT, "resolved"), 90, "the resolution")
        assert resolved["labels"]["table"] == TABLE
    finally:
        prometheus.stop()
        alertmanager.stop()
        webhook.server.shutdown()


def post_alerts(alertmanager, *alerts: dict[str, str]) -> None:
    """Send alerts to Alertmanager the way Prometheus does (labels carry `cluster`, the external
    label of docker/prometheus/prometheus.yml)."""
    now = datetime.now(UTC)
    body = [
        {
            "labels": {"cluster": "local", **labels},
            "annotations": {"summary": labels["alertname"]},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
        }
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{alertmanager.url}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def notified(webhook: Webhook, receiver: str) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """(sorted alert names, group labels) of every notification ``receiver`` got."""
    return [
        (tuple(sorted(a["labels"]["alertname"] for a in m["alerts"])), m["groupLabels"])
        for m in webhook.received
        if m["receiver"] == receiver
    ]


def test_one_stuck_table_pages_once_and_a_dead_sensor_hides_no_failure(tmp_path):
    webhook = Webhook()
    intervals = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    alertmanager = start_alertmanager(
        tmp_path / "alertmanager", alertmanager_config(DOCKER, webhook.url, intervals)
    )
    red_a = {"pipeline": "red", "table": "a", "severity": "critical"}
    try:
        # the table's runs keep failing, and the metrics sensor of its pipeline is dead
        post_alerts(
            alertmanager,
            {"alertname": ALERT, **red_a},
            {"alertname": "IcebergOffloadSchedulerDown", "pipeline": "red", "severity": "critical"},
            {
                "alertname": "IcebergOffloadTableNotReporting",
                "pipeline": "red",
                "table": "b",
                "severity": "warning",
            },
            # another deployment with a table of the same name
            {"alertname": "IcebergOffloadLagCritical", **red_a, "pipeline": "blue"},
            {"alertname": "IcebergOffloadWatchdog", "severity": "none"},
        )
        wait_for(lambda: len(notified(webhook, "pager")) >= 3, 30, "three pages")
        # the lag and the stale watermark of the failing table join its incident later
        post_alerts(
            alertmanager,
            {"alertname": "IcebergOffloadLagCritical", **red_a},
            {"alertname": "IcebergOffloadWatermarkStale", **red_a},
            {"alertname": "IcebergOffloadLagElevated", **red_a, "severity": "warning"},
        )
        time.sleep(5)  # five group intervals: any update would have been sent

        pages = notified(webhook, "pager")
        assert sorted(pages, key=str) == sorted(
            [
                ((ALERT,), {"cluster": "local", "pipeline": "red", "table": "a"}),
                (("IcebergOffloadSchedulerDown",), {"cluster": "local", "pipeline": "red"}),
                (
                    ("IcebergOffloadLagCritical",),
                    {"cluster": "local", "pipeline": "blue", "table": "a"},
                ),
            ],
            key=str,
        ), pages
        # the dead sensor's frozen "not reporting" and the failing table's warning stay quiet
        assert notified(webhook, "default") == []
        assert [names for names, _ in notified(webhook, "watchdog")] == [
            ("IcebergOffloadWatchdog",)
        ]
        with urllib.request.urlopen(f"{alertmanager.url}/api/v2/alerts", timeout=5) as r:
            state = {
                (a["labels"]["alertname"], a["labels"].get("pipeline"), a["labels"].get("table")): (
                    a["status"]["inhibitedBy"]
                )
                for a in json.load(r)
            }
        assert state[(ALERT, "red", "a")] == []
        assert state[("IcebergOffloadLagCritical", "blue", "a")] == []
        for muted in (
            ("IcebergOffloadLagCritical", "red", "a"),
            ("IcebergOffloadWatermarkStale", "red", "a"),
            ("IcebergOffloadLagElevated", "red", "a"),
            ("IcebergOffloadTableNotReporting", "red", "b"),
        ):
            assert state[muted], muted
    finally:
        alertmanager.stop()
        webhook.server.shutdown()
