"""A Pushgateway that accepts connections and never answers costs one timeout per tick or run,
not one per table; the next tick against a healthy Pushgateway pushes everything."""

import json
import socket
import threading
import time
import urllib.request

import dagster as dg
import pytest

from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.metrics.budget import PUSH_TIMEOUT_SECONDS, PushBudget
from tests.conftest import write_config
from tests.e2e.test_metrics import cycle
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e
TABLES = [f"trades_{i:02d}" for i in range(60)]


class SilentServer:
    """Accepts every connection and never reads or answers; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent(monkeypatch):
    server = SilentServer()
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", server.url)
    yield server
    server.close()


def test_a_silent_pushgateway_costs_one_timeout_per_tick_and_recovers(
    project, pushgateway, silent, monkeypatch
):
    write_config(
        project.dir,
        tables=[{"name": name, "source_table": DEMO_TABLES[0]} for name in TABLES],
    )
    project.seed(100, table=DEMO_TABLES[0])
    budget = PushBudget()
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        report = metrics_tick(instance, project.config, MetricsState(), budget=budget)
    took = time.monotonic() - started

    assert len(silent.held) == 1 and budget.attempts == 1
    assert budget.skipped == len(TABLES) + 1  # every other table, the pipeline group, the listing
    assert report.pushed == 0 and report.failed_pushes == len(TABLES) + 1
    assert took < 30, f"tick took {took:.1f} s; was {PUSH_TIMEOUT_SECONDS * len(TABLES)} s"

    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", pushgateway.url)
    with dg.DagsterInstance.get() as instance:
        healthy = metrics_tick(instance, project.config, MetricsState())
    assert healthy.pushed == len(TABLES) + 1 and healthy.failed_pushes == 0
    with urllib.request.urlopen(f"{pushgateway.url}/api/v1/metrics") as response:
        groups = json.load(response)["data"]
    assert {g["labels"]["table"] for g in groups if "table" in g["labels"]} == set(TABLES)


def test_the_hooks_of_a_cycle_share_one_timeout(project, silent):
    for table in DEMO_TABLES:
        project.seed(500, table=table)
    outcomes = cycle(project)
    assert all(o.success for o in outcomes)
    assert len(silent.held) == 1  # one hook tried and timed out; the others were skipped
