"""The pager as an on-call engineer meets it: faults in real pipeline runs (a real Dagster instance,
the default retries on) pushed to a real Pushgateway, judged by a real Prometheus with the
project's rules and routed by a real Alertmanager with the project's routing to a local webhook
standing in for every receiver. Each scenario counts what reaches which receiver.

Durations are compressed by a profile generated from the same rule file and Alertmanager config
(``for``/``keep_firing_for`` divided by 60, at least 10 s; group timers of seconds); thresholds,
expressions, routes and inhibitions are the project's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.demo.stack import (
    Service,
    alertmanager_config,
    free_port,
    prometheus_config,
    start_alertmanager,
    start_prometheus,
    start_pushgateway,
)
from tests.conftest import DOCKER, Project, promql, write_config
from tests.e2e.profile import FLOOR_SECONDS, RULES, fast_rules, seconds, use_fast_rules
from tests.e2e.test_alerts import Webhook, wait_for
from tests.e2e.test_metrics import corrupt_catalog, cycle, restore_catalog, tick, value
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e
TABLE = DEMO_TABLES[0]
FAILURES = "IcebergOffloadConsecutiveFailures"
# Alertmanager timers of the profile; repeats never happen within a test
AM_TIMERS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
# long enough for any alert that would fire to be evaluated, grouped and delivered
SETTLE_SECONDS = 6


def test_the_profile_only_compresses_waiting_times() -> None:
    original = yaml.safe_load(RULES.read_text())
    fast = fast_rules()
    pairs = [
        (a, b)
        for ga, gb in zip(original["groups"], fast["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert any("for" in a for a, _ in pairs)
    for a, b in pairs:
        keys = ("for", "keep_firing_for")
        assert {k: v for k, v in a.items() if k not in keys} == {
            k: v for k, v in b.items() if k not in keys
        }
        for key in set(keys) & a.keys():
            assert FLOOR_SECONDS <= seconds(b[key]) <= max(FLOOR_SECONDS, seconds(a[key]))


@dataclass
class Chain:
    """Pushgateway → Prometheus → Alertmanager → webhook, for one project."""

    project: Project
    pushgateway: Service
    webhook: Webhook
    tmp: Path
    alertmanager: Service | None = None
    prometheus: Service | None = None

    def start(self) -> None:
        """Alertmanager and Prometheus; call after the first tick, so no heartbeat is missing."""
        self.alertmanager = start_alertmanager(
            self.tmp / "alertmanager", alertmanager_config(DOCKER, self.webhook.url, AM_TIMERS)
        )
        port = free_port()
        config = prometheus_config(
            DOCKER, self.pushgateway.url, port, alertmanager=self.alertmanager.url, interval="1s"
        )
        config = use_fast_rules(config, self.tmp / "rules")
        # alerts that fire before Prometheus knows its Alertmanager are dropped and sent again
        # after the resend delay (1 min): compressed like the rest
        self.prometheus = start_prometheus(
            self.tmp / "prometheus", config, port, flags=["--rules.alert.resend-delay=2s"]
        )

    def restart_pushgateway(self) -> None:
        """A new, empty Pushgateway on the same address."""
        port = int(self.pushgateway.url.rsplit(":", 1)[1])
        self.pushgateway.stop()
        self.pushgateway = start_pushgateway(self.tmp / f"pushgateway-{time.time()}", port=port)

    def query(self, expr: str) -> list[dict[str, Any]]:
        assert self.prometheus is not None
        return promql(self.prometheus, expr)

    def notifications(self, receiver: str) -> list[dict[str, Any]]:
        return [m for m in self.webhook.received if m["receiver"] == receiver]

    def alerts(self, receiver: str) -> list[tuple[str, str]]:
        """(alertname, status) of every alert in every notification ``receiver`` got."""
        return [
            (a["labels"]["alertname"], a["status"])
            for m in self.notifications(receiver)
            for a in m["alerts"]
        ]

    def pages(self) -> list[list[str]]:
        """The alert names each notification to the pager carried."""
        return [
            sorted(a["labels"]["alertname"] for a in m["alerts"])
            for m in self.notifications("pager")
        ]

    def live(self) -> None:
        """Wait until the chain delivers: the watchdog's first notification (Prometheus sends
        its first alerts some 10 s after it starts)."""
        wait_for(lambda: self.notifications("watchdog"), 40, "the watchdog notification")

    def settle(self) -> None:
        time.sleep(SETTLE_SECONDS)


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chain]:
    """One table with the default retries (a tiny delay keeps the test fast) and the chain."""
    write_config(
        tmp_path,
        run={"batch_rows": 10_000, "lock_dir": "locks", "retry": {"delay_seconds": 0.01}},
        tables=[{"name": TABLE}],
    )
    project = Project(dir=tmp_path, config_path=tmp_path / "offload.yaml")
    assert project.config.run.max_retries == 3
    pushgateway = start_pushgateway(tmp_path / "pushgateway")
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", pushgateway.url)
    chain = Chain(project, pushgateway, Webhook(), tmp_path)
    try:
        yield chain
    finally:
        for service in (chain.prometheus, chain.alertmanager, chain.pushgateway):
            if service is not None:
                service.stop()
        chain.webhook.server.shutdown()


def healthy_start(chain: Chain, rows: int = 500) -> None:
    """Rows offloaded, one sensor tick, then the chain watching."""
    chain.project.seed(rows, table=TABLE)
    assert cycle(chain.project)[0].success
    tick(chain.project)
    chain.start()


def fail_runs(chain: Chain, runs: int) -> None:
    """``runs`` runs with every retry failing (an unreadable catalog is retryable)."""
    corrupt_catalog(chain.project)
    for _ in range(runs):
        (outcome,) = cycle(chain.project)
        assert not outcome.success and outcome.error_type == "catalog_unavailable"
    restore_catalog(chain.project)


def test_a_healthy_steady_state_pages_nobody(chain: Chain) -> None:
    healthy_start(chain)
    for _ in range(2):
        chain.project.seed(200, table=TABLE, span_seconds=5)
        assert cycle(chain.project)[0].success
        tick(chain.project)
    chain.live()
    chain.settle()
    chain.settle()  # past every compressed `for`, so pending alerts would have fired
    # the chain delivers (the watchdog arrived), and nothing else did
    assert chain.pages() == []
    assert chain.alerts("default") == []
    assert chain.query('ALERTS{alertname!="IcebergOffloadWatchdog"}') == []


def test_one_failed_run_with_retries_pages_nobody(chain: Chain) -> None:
    healthy_start(chain)
    fail_runs(chain, 1)
    tick(chain.project)
    # the retries did run: 4 failed attempts, 1 failed run
    assert value(chain.pushgateway, "offload_runs_total", table=TABLE, status="failure") == 4
    wait_for(
        lambda: chain.query("offload_consecutive_failures == 1"), 10, "the failure in Prometheus"
    )
    chain.live()
    chain.settle()
    assert chain.pages() == []
    assert chain.query(f'ALERTS{{alertname="{FAILURES}"}}') == []
    assert chain.query("max_over_time(offload_consecutive_failures[5m]) > 1") == []
    # the one failed run is a warning at most, and the next good run ends it
    assert {name for name, _ in chain.alerts("default")} <= {"IcebergOffloadSuccessRateLow"}
    assert cycle(chain.project)[0].success
    tick(chain.project)
    chain.settle()
    assert chain.pages() == []
    assert chain.query('ALERTS{alertstate="firing", severity!="none"}') == []


def test_a_failing_table_pages_once_and_a_pushgateway_restart_does_not_repage(
    chain: Chain,
) -> None:
    healthy_start(chain)
    fail_runs(chain, 3)
    tick(chain.project)
    wait_for(chain.pages, 45, "the page")
    chain.settle()
    assert chain.pages() == [[FAILURES]]
    # before the page, the second failed run may have warned; nothing else reached anyone
    assert {name for name, _ in chain.alerts("default")} <= {"IcebergOffloadSuccessRateLow"}
    (page,) = chain.notifications("pager")
    assert page["groupLabels"] == {"cluster": "local", "pipeline": "default", "table": TABLE}
    (alert,) = page["alerts"]
    assert "3 runs in a row" in alert["annotations"]["description"]
    # the table's warning rides on the page: muted, never a notification of its own since
    assert chain.query('ALERTS{alertname="IcebergOffloadSuccessRateLow",alertstate="firing"}')
    sent_before = len(chain.webhook.received)

    # an emptied Pushgateway: every series is back at the next tick, and the page holds
    chain.restart_pushgateway()
    # Prometheus scrapes the empty Pushgateway until the next tick (up to 30 s in production)
    time.sleep(4)
    tick(chain.project)
    assert value(chain.pushgateway, "offload_consecutive_failures", table=TABLE) == 3
    chain.settle()
    chain.settle()
    assert chain.pages() == [[FAILURES]]
    assert (FAILURES, "resolved") not in chain.alerts("pager")
    assert [m for m in chain.webhook.received[sent_before:] if m["receiver"] != "watchdog"] == []


def test_an_unreadable_catalog_resets_no_counter_and_raises_no_late_rows(chain: Chain) -> None:
    project = chain.project
    project.seed(500, table=TABLE)
    assert cycle(project)[0].success
    # late rows counted before Prometheus watches: no increase it could see
    project.seed(
        50,
        table=TABLE,
        late_fraction=0.5,
        watermarks={TABLE: project.state(TABLE).watermark.cursor.ts},
    )
    assert cycle(project)[0].success
    state = tick(project)
    late = value(chain.pushgateway, "offload_late_rows_total", table=TABLE)
    assert late and late > 0
    chain.start()
    chain.live()

    corrupt_catalog(project)
    for _ in range(3):  # several ticks, each scraped
        tick(project, state)
        time.sleep(1.5)
    restore_catalog(project)
    tick(project, state)
    chain.settle()
    assert (
        chain.query("resets(offload_late_rows_total[5m]) > 0 or resets(offload_rows_total[5m]) > 0")
        == []
    )
    assert chain.query('ALERTS{alertname="IcebergOffloadLateRows"}') == []
    assert ("IcebergOffloadLateRows", "firing") not in chain.alerts("default")
    assert chain.pages() == []


def test_a_future_dated_row_warns_and_never_pages(chain: Chain) -> None:
    healthy_start(chain)
    chain.project.seed(1, table=TABLE, span_seconds=1, now=time.time() + 86_400)
    assert cycle(chain.project)[0].success  # nothing due: the row waits for its time
    tick(chain.project)
    wait_for(
        lambda: ("IcebergOffloadFutureRows", "firing") in chain.alerts("default"),
        40,
        "the future-rows warning",
    )
    chain.settle()
    assert chain.pages() == []
    assert chain.query('ALERTS{alertname=~"IcebergOffloadLag.*"}') == []
    assert {name for name, _ in chain.alerts("default")} == {"IcebergOffloadFutureRows"}


def test_a_dead_sensor_pages_and_a_failing_table_still_pages(chain: Chain) -> None:
    chain.project.seed(500, table=TABLE)
    assert cycle(chain.project)[0].success
    # the sensor's last tick was 200 s ago (over the 180 s heartbeat limit); none follows
    with dg.DagsterInstance.get() as instance:
        metrics_tick(instance, chain.project.config, MetricsState(), now=time.time() - 200)
    chain.start()
    fail_runs(chain, 3)  # the runs' own hooks push the failure streak
    wait_for(lambda: len(chain.pages()) >= 2, 45, "two pages")
    chain.settle()
    assert sorted(chain.pages()) == [[FAILURES], ["IcebergOffloadSchedulerDown"]]
    # the frozen lag and "not reporting" alerts stay held back; a warning before the page at most
    assert {name for name, _ in chain.alerts("default")} <= {"IcebergOffloadSuccessRateLow"}
    (down,) = [m for m in chain.notifications("pager") if "table" not in m["groupLabels"]]
    assert "metrics sensor" in down["alerts"][0]["annotations"]["summary"]
