"""Writers on many hosts: two processes with lock directories of their own (the file lock is per
host) share one Dagster instance in PostgreSQL, the Iceberg catalog in PostgreSQL and the
warehouse on an S3 server, and race cycles of the same tables round after round.

Through Dagster the table's pool, kept in the shared instance database, makes the second host's
step wait for the slot; outside it the Iceberg commit check alone lets exactly one writer of each
race commit and fails the other with ``commit_conflict``. Hosts starting the first runs of a
table at once do not fail a run over creating its pool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from offload_pipeline.defs.eventlog import error_type_of
from offload_pipeline.defs.runs import create_pools
from offload_pipeline.defs.steps import pool_name
from tests.conftest import ROOT, Project, worker_result, write_config
from tests.hot_tiers import DEMO_TABLES, PostgresHot, PostgresServer
from tests.object_store import CATALOG_PROPERTIES, serve_bucket

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

BUCKET = "lake"
TABLES = DEMO_TABLES[:2]
ROUNDS = 3
ROWS = 2_000
BLOCKED = "Step blocked by limit for pool"


@dataclass
class Cluster:
    """Two hosts over one hot tier, one Dagster instance, one catalog and one warehouse."""

    hot: PostgresHot
    storage: tuple[PostgresServer, str]
    """the server and database of the shared Dagster instance"""
    hosts: tuple[Project, Project]
    homes: tuple[Path, Path]
    """each host's ``DAGSTER_HOME``: the same instance settings, the same database"""

    def seed(self, rows: int = ROWS, tables: tuple[str, ...] = TABLES) -> None:
        for table in tables:
            self.hot.seed(table, rows, span_seconds=60)

    def run(self, host: int, *tables: str, failpoint: str) -> subprocess.Popen[str]:
        """Start ``offload-pipeline run`` on ``host`` (its own config, lock dir, Dagster home)."""
        env = {**os.environ, "DAGSTER_HOME": str(self.homes[host]), "OFFLOAD_FAILPOINT": failpoint}
        selection = [arg for table in tables for arg in ("--table", table)]
        config = str(self.hosts[host].config_path)
        return subprocess.Popen(
            [sys.executable, "-m", "offload_pipeline.cli", "--verbose", "--config", config, "run"]
            + selection,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def exactly_once(self, tables: tuple[str, ...] = TABLES) -> None:
        """Iceberg holds every hot-tier row up to the watermark once, and the watermark is the
        hot tier's newest row (no gap, nothing duplicated)."""
        project = self.hosts[0]
        for table in tables:
            check = project.reconcile(table)
            assert check.ok, (table, check)
            assert check.iceberg_rows == self.hot.count(table), (table, check)


@pytest.fixture
def cluster(
    postgres_server: PostgresServer, pg_hot: PostgresHot, tmp_path: Path, monkeypatch
) -> Iterator[Cluster]:
    storage_db, catalog_db = postgres_server.create_database(), postgres_server.create_database()
    server = postgres_server
    settings = {"HOST": server.host, "PORT": str(server.port), "DB": storage_db, "USER": "postgres"}
    for key, value in {**settings, "PASSWORD": "unused-on-trust"}.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{key}", value)
    uri = f"postgresql+psycopg2://postgres@{server.host}:{server.port}/{catalog_db}"
    catalog = {"type": "sql", "uri": uri, "warehouse": f"s3://{BUCKET}/warehouse"}
    hosts, homes = [], []
    for name in ("host_a", "host_b"):
        directory = tmp_path / name
        (directory / "dagster_home").mkdir(parents=True)
        shutil.copy(ROOT / "docker" / "dagster.yaml", directory / "dagster_home" / "dagster.yaml")
        path = write_config(
            directory,
            sources={"hot": pg_hot.source()},
            catalog={"name": "offload", "properties": {**catalog, **CATALOG_PROPERTIES}},
            # a lock directory of each host's own: the file lock never sees the other host
            run={"batch_rows": 50_000, "lock_dir": "locks", "retry": {"max_retries": 0}},
            tables=[{"name": table} for table in TABLES],
        )
        hosts.append(Project(directory, path, pg_hot))
        homes.append(directory / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(homes[0]))
    import dagster as dg

    # the instance creates its schema once, before two hosts would race to
    with dg.DagsterInstance.get():
        pass
    with serve_bucket(BUCKET, monkeypatch.setenv):
        yield Cluster(pg_hot, (server, storage_db), (hosts[0], hosts[1]), (homes[0], homes[1]))
    for database in (storage_db, catalog_db):
        server.drop_database(database)


def test_hosts_racing_through_dagster_wait_on_the_table_pool(cluster):
    """Both hosts run a cycle of the same tables at once, every round: each table's step on one
    host waits while the other host's step holds the table's slot, both runs succeed, and no
    slot stays claimed."""
    import dagster as dg

    for _ in range(ROUNDS):
        cluster.seed()
        # each host holds its first step 1.5 s after planning, so the other's step meets the slot
        procs = [cluster.run(host, *TABLES, failpoint="plan~1500") for host in (0, 1)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
    cluster.exactly_once()

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 * ROUNDS
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        blocked = 0
        spans: dict[str, list[tuple[float, float]]] = {table: [] for table in TABLES}
        for run in runs:
            for event in instance.all_logs(run.run_id):
                kind = event.dagster_event_type
                if kind == dg.DagsterEventType.STEP_START and event.step_key in spans:
                    begin = event.timestamp
                elif kind == dg.DagsterEventType.STEP_SUCCESS and event.step_key in spans:
                    spans[event.step_key].append((begin, event.timestamp))
                elif kind == dg.DagsterEventType.ENGINE_EVENT:
                    blocked += event.message.startswith(BLOCKED)
        infos = instance.event_log_storage.get_concurrency_infos([pool_name(t) for t in TABLES])
    # the slot is claimed before the step starts: the steps of one table never overlap
    for table, table_spans in spans.items():
        ordered = sorted(table_spans)
        assert len(ordered) == 2 * ROUNDS, table
        for (_, end), (begin, _) in zip(ordered, ordered[1:], strict=False):
            assert begin >= end, f"{table}: steps of two hosts overlapped: {ordered}"
    assert blocked >= ROUNDS, f"only {blocked} steps waited for a slot in {ROUNDS} rounds"
    for pool, info in infos.items():
        assert info.slot_count == 1, pool
        assert info.claimed_slots == [] and info.pending_steps == [], (pool, info)
    print(f"\n{ROUNDS} rounds x 2 hosts: {blocked} steps waited for a slot; slots left claimed: 0")


def test_hosts_racing_outside_the_pools_one_commit_wins_each_race(cluster, tmp_path, monkeypatch):
    """Two core writers, one per host, with nothing between them but the Iceberg commit check:
    each race has exactly one winner, the loser fails with ``commit_conflict``, nothing is
    duplicated, and a later run catches up."""
    table = TABLES[0]
    conflicts = 0
    for race in range(ROUNDS):
        cluster.seed(tables=(table,))
        expected = cluster.hot.count(table) - cluster.hosts[0].iceberg_rows(table)
        # both plan from the same committed state: each waits after planning until the other has
        monkeypatch.setenv("OFFLOAD_FAILPOINT_DIR", str(tmp_path / f"race{race}"))
        procs = [
            host.worker(table, failpoint="plan^2", batch_rows=50_000) for host in cluster.hosts
        ]
        results = [worker_result(proc) for proc in procs]
        assert sorted(code for code, _ in results) == [0, 3], results
        (winner,) = [out for code, out in results if code == 0]
        (loser,) = [out for code, out in results if code == 3]
        assert loser["error_type"] == "commit_conflict", loser
        assert winner["rows"] == expected and winner["commits"] == 1, (winner, expected)
        conflicts += 1
        cluster.exactly_once((table,))
    # the losing host's next run catches up with what arrived since
    cluster.seed(tables=(table,))
    code, out = worker_result(cluster.hosts[1].worker(table))
    assert code == 0 and out["rows"] == ROWS, out
    cluster.exactly_once((table,))
    print(f"\n{ROUNDS} races: {ROUNDS} commits, {conflicts} commit_conflict")


def test_a_dagster_run_that_loses_a_race_fails_with_commit_conflict_and_frees_its_slot(cluster):
    """A writer outside Dagster (a slot freed by hand, a script) commits while a host's Dagster
    run holds the table's slot: the run's step fails with ``commit_conflict``, its slot is free
    afterwards, and the host's next run catches up."""
    import dagster as dg

    table = TABLES[0]
    cluster.seed(tables=(table,))
    # the run plans, then holds 4 s; the other host's writer plans from the same state meanwhile
    run = cluster.run(0, table, failpoint="plan~4000")
    with dg.DagsterInstance.get() as instance:
        _wait_for_step_start(instance, table)
    code, out = worker_result(cluster.hosts[1].worker(table))
    assert code == 0 and out["rows"] == ROWS, out
    run.communicate(timeout=120)
    assert run.returncode != 0

    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_runs()
        assert record.status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(record.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        assert failure.step_key == table
        assert error_type_of(failure.dagster_event) == "commit_conflict"
        info = instance.event_log_storage.get_concurrency_info(pool_name(table))
        assert info.claimed_slots == [] and info.pending_steps == [], info
    cluster.exactly_once((table,))
    cluster.seed(tables=(table,))
    again = cluster.run(0, table, failpoint="")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-3000:]
    cluster.exactly_once((table,))


def test_a_pool_another_host_creates_first_is_taken_as_it_is(cluster):
    """Two hosts starting the first runs of a table at once both find its pool missing. Dagster's
    own creation fails the loser's run on PostgreSQL; ``create_pools`` takes the winner's pool."""
    import dagster as dg
    from sqlalchemy.exc import DBAPIError

    pool = pool_name(TABLES[0])
    server, database = cluster.storage
    other_host = server.connect(database)
    other_host.autocommit = False
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with dg.DagsterInstance.get() as instance:
                create_pools(instance, [pool])
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    with other_host.cursor() as cur:
        # the other host has created the pool (the rows Dagster writes) and not yet committed
        cur.execute(
            'INSERT INTO concurrency_limits (concurrency_key, "limit", using_default_limit) '
            "VALUES (%s, 1, true)",
            (pool,),
        )
        cur.execute(
            "INSERT INTO concurrency_slots (concurrency_key, deleted) VALUES (%s, false)", (pool,)
        )
    this_host = threading.Thread(target=create)
    this_host.start()
    time.sleep(1)  # this host now sees no pool and waits on the other's uncommitted row
    other_host.commit()
    other_host.close()
    this_host.join(timeout=60)
    assert not this_host.is_alive() and errors == [], errors
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        info = storage.get_concurrency_info(pool)
        assert (info.slot_count, info.limit, info.claimed_slots) == (1, 1, [])
        # what the step itself would do with a pool that appeared since it looked
        with pytest.raises(DBAPIError, match="current transaction is aborted"):
            storage.initialize_concurrency_limit_to_default(pool)


def _wait_for_step_start(instance, table: str, timeout: float = 60) -> None:  # noqa: ANN001
    import dagster as dg

    deadline = time.monotonic() + timeout
    while not any(
        e.step_key == table
        for r in instance.get_runs()
        for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)
    ):
        assert time.monotonic() < deadline, f"the run never started the step of {table}"
        time.sleep(0.1)
