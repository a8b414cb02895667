"""Shared fixtures: every test gets its own hot tier, catalog, warehouse and Dagster home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from offload_pipeline.config import Config, RunSpec, TableSpec, load_config
from offload_pipeline.core.handle import TableHandle, open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.iceberg.state import CommittedState, decode_state
from offload_pipeline.core.maintenance import MaintenanceResult, maintain
from offload_pipeline.core.offload import OffloadResult, offload
from offload_pipeline.core.reconcile import Reconciliation, reconcile
from offload_pipeline.core.sources import HotTier
from offload_pipeline.feed import DEMO_TABLES
from offload_pipeline.local_stack import (
    Service,
    free_port,
    prometheus_config,
    start_prometheus,
    start_pushgateway,
)
from tests.hot_tiers import PostgresHot, PostgresServer, SqliteHot, start_postgres

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "offload_worker.py"


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own config, Dagster home and pyiceberg settings out of tests."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PYICEBERG_HOME", str(tmp_path))
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", "")
    monkeypatch.delenv("OFFLOAD_FAILPOINT", raising=False)
    monkeypatch.delenv("OFFLOAD_CONFIG", raising=False)


def write_config(directory: Path, **overrides: Any) -> Path:
    """An offload.yaml for the three demo tables under ``directory`` (settle delay 0)."""
    doc: dict[str, Any] = {
        "sources": {"hot": {"kind": "sqlite", "path": "hot.db"}},
        "catalog": {
            "name": "test",
            "properties": {"type": "sql", "uri": "sqlite:///catalog.db", "warehouse": "warehouse"},
        },
        "run": {"batch_rows": 10_000, "lock_dir": "locks", "retry": {"max_retries": 0}},
        "defaults": {
            "cursor": {"event_time": "exchange_timestamp", "tie_breaker": "sequence_number"},
            "primary_key": ["sequence_number"],
            "settle_delay_seconds": 0,
        },
        "tables": [{"name": name} for name in DEMO_TABLES],
    }
    for key, value in overrides.items():
        doc[key] = value
    path = directory / "offload.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Project:
    """A throwaway deployment: config, hot tier, catalog; helpers to drive and inspect it."""

    dir: Path
    config_path: Path
    hot: Any = None
    """the hot tier handle (``tests/hot_tiers.py``); SQLite at ``hot.db`` unless given"""

    def __post_init__(self) -> None:
        if self.hot is None:
            self.hot = SqliteHot(self.dir / "hot.db")

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def hot_db(self) -> Path:
        return self.dir / "hot.db"

    def spec(self, table: str = DEMO_TABLES[0]) -> TableSpec:
        return self.config.table(table)

    def catalog(self) -> IcebergCatalog:
        return IcebergCatalog(self.config.catalog)

    def table(
        self,
        table: str = DEMO_TABLES[0],
        source: HotTier | None = None,
        spec: TableSpec | None = None,
    ) -> TableHandle:
        """The core's handle of ``table`` (its configured hot tier unless ``source`` is given)."""
        handle = open_table(spec or self.spec(table), self.catalog())
        return handle if source is None else replace(handle, source=source)

    def run(self, **overrides: Any) -> RunSpec:
        """The config's ``run`` settings with ``overrides`` (RunSpec field names)."""
        return replace(self.config.run, **overrides)

    def seed(self, rows: int, table: str = DEMO_TABLES[0], **kwargs: Any) -> None:
        kwargs.setdefault("span_seconds", 600)
        self.hot.seed(table, rows, **kwargs)

    def offload(
        self,
        table: str = DEMO_TABLES[0],
        *,
        source: HotTier | None = None,
        spec: TableSpec | None = None,
        clock: Callable[[], float] = time.time,
        **run: Any,
    ) -> OffloadResult:
        """One core offload of ``table``; ``run`` overrides the config's RunSpec fields."""
        return offload(self.table(table, source, spec), self.run(**run), clock=clock)

    def maintain(self, table: str = DEMO_TABLES[0]) -> MaintenanceResult:
        """One core maintenance of ``table`` with the config's settings."""
        config = self.config
        return maintain(self.table(table), config.run, config.maintenance)

    def state(self, table: str = DEMO_TABLES[0]) -> CommittedState:
        iceberg = self.catalog().load(self.spec(table))
        assert iceberg is not None
        return decode_state(iceberg.properties)

    def reconcile(self, table: str = DEMO_TABLES[0]) -> Reconciliation:
        return reconcile(self.table(table))

    def hot_count(self, table: str = DEMO_TABLES[0]) -> int:
        return self.hot.count(table)

    def iceberg_rows(self, table: str = DEMO_TABLES[0]) -> int:
        iceberg = self.catalog().load(self.spec(table))
        return 0 if iceberg is None else iceberg.scan().to_arrow().num_rows

    def worker(
        self, table: str = DEMO_TABLES[0], failpoint: str | None = None, **kwargs: Any
    ) -> subprocess.Popen[str]:
        """Start a separate process running one core offload (optionally with a failpoint)."""
        env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_FAILPOINT"}
        if failpoint:
            env["OFFLOAD_FAILPOINT"] = failpoint
        args = [sys.executable, str(WORKER), str(self.config_path), table, json.dumps(kwargs)]
        return subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def cli(
        self, *args: str, failpoint: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``offload-pipeline --config <this> ARGS`` in a subprocess."""
        env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_FAILPOINT"}
        if failpoint:
            env["OFFLOAD_FAILPOINT"] = failpoint
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "offload_pipeline.cli",
                "--config",
                str(self.config_path),
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(dir=tmp_path, config_path=write_config(tmp_path))


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A real PostgreSQL server: ``OFFLOAD_TEST_POSTGRES_URL`` if reachable, else a throwaway
    cluster started by ``scripts/start-postgres.sh``. Never skipped: no server, no green suite."""
    return PostgresServer(start_postgres())


@pytest.fixture
def pg_hot(postgres_server: PostgresServer) -> Iterator[PostgresHot]:
    """A fresh database on the test server, dropped afterwards."""
    database = postgres_server.create_database()
    yield PostgresHot(postgres_server, database)
    postgres_server.drop_database(database)


@pytest.fixture(params=["sqlite", "postgres"])
def any_project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    """The same project on each hot-tier kind that runs here (ClickHouse: see
    tests/integration/test_clickhouse_source.py)."""
    if request.param == "sqlite":
        return Project(dir=tmp_path, config_path=write_config(tmp_path))
    hot = request.getfixturevalue("pg_hot")
    path = write_config(tmp_path, sources={"hot": hot.source()})
    return Project(dir=tmp_path, config_path=path, hot=hot)


def worker_result(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, dict[str, Any]]:
    """Wait for a worker; its exit code and the JSON it printed (empty if it was killed)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, (json.loads(lines[-1]) if lines else {"stderr": err[-2000:]})


@pytest.fixture
def pushgateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    """A real Pushgateway on a free port; the pipeline pushes to it (OFFLOAD_PUSHGATEWAY_URL)."""
    service = start_pushgateway(tmp_path / "pushgateway")
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", service.url)
    yield service
    service.stop()


@pytest.fixture
def prometheus(tmp_path: Path, pushgateway: Service) -> Iterator[Service]:
    """A real Prometheus with the project's config and rules, scraping ``pushgateway`` every 1 s."""
    port = free_port()
    config = prometheus_config(pushgateway.url, port, interval="1s")
    service = start_prometheus(tmp_path / "prometheus", config, port)
    yield service
    service.stop()


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def promql(prometheus: Service, query: str) -> list[dict[str, Any]]:
    """Instant query result vector."""
    encoded = urllib.parse.urlencode({"query": query})
    body = http_json(f"{prometheus.url}/api/v1/query?{encoded}")
    assert body["status"] == "success", body
    return body["data"]["result"]
