"""A Pushgateway that accepts connections and never answers costs one timeout per tick or run,
not one per table; the next tick against a healthy Pushgateway pushes everything, and so does a
tick against a healthy Pushgateway that is slow to reach."""

import json
import socket
import threading
import time
import urllib.request

import dagster as dg
import pytest

from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.metrics.budget import BUDGET_SECONDS, PUSH_TIMEOUT_SECONDS, PushBudget
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


class SlowProxy:
    """Forwards TCP to a real server, holding every chunk sent to it for ``delay`` seconds (a
    Pushgateway far away); counts the connections."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
        self.delay = delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, self.delay)).start()
            threading.Thread(target=self._pipe, args=(server, client, 0.0)).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


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


def test_a_slow_pushgateway_gets_every_table_in_one_tick(project, pushgateway, monkeypatch):
    write_config(
        project.dir,
        tables=[{"name": name, "source_table": DEMO_TABLES[0]} for name in TABLES],
    )
    project.seed(100, table=DEMO_TABLES[0])
    # one push after another, the delays alone would take longer than the whole budget
    delay = 1.2 * BUDGET_SECONDS / len(TABLES)
    proxy = SlowProxy(pushgateway.url, delay)
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", proxy.url)
    try:
        with dg.DagsterInstance.get() as instance:
            report = metrics_tick(instance, project.config, MetricsState())
    finally:
        proxy.close()

    assert report.failed_pushes == 0 and report.pushed == len(TABLES) + 1
    with urllib.request.urlopen(f"{pushgateway.url}/api/v1/metrics") as response:
        groups = json.load(response)["data"]
    assert {g["labels"]["table"] for g in groups if "table" in g["labels"]} == set(TABLES)
