"""Live: a real offload fails, the failure alert fires in Prometheus, Alertmanager delivers it to
a webhook, and it resolves once a run succeeds. Real binaries with the project's configs; only
ports, intervals and the webhook address are rewritten."""

import json
import threading
import time
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
        prometheus_config(
            DOCKER, pushgateway.url, port, alertmanager=alertmanager.url, interval="1s"
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
