"""The PostgreSQL hot tier against a real server: types, snapshot, errors, outages, secrets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from offload_pipeline.config import load_config
from offload_pipeline.core.sources import open_source
from offload_pipeline.core.window import DAY, MICROS, CursorValue, Window
from offload_pipeline.demo.feed import TRADES_SCHEMA
from offload_pipeline.errors import (
    OffloadTimeoutError,
    SchemaMismatchError,
    SourceQueryError,
    SourceUnavailableError,
)
from tests.conftest import Project, write_config
from tests.hot_tiers import PostgresHot, PostgresServer, SqliteHot, start_postgres, stop_postgres

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
TABLE = "bronze_trades_binance"
SECRET = "s3cr3t-Pa55_word"


@pytest.fixture
def pg_project(tmp_path: Path, pg_hot: PostgresHot) -> Project:
    return Project(tmp_path, write_config(tmp_path, sources={"hot": pg_hot.source()}), pg_hot)


def test_the_demo_table_reads_as_the_same_arrow_schema_as_from_sqlite(pg_project, tmp_path):
    pg_project.seed(10)
    sqlite = SqliteHot(tmp_path / "other.db")
    sqlite.seed(TABLE, 10)
    spec = pg_project.spec()
    with open_source(spec.source).snapshot(spec) as snap:
        pg_schema = snap.schema()
    sqlite_spec = replace(spec, source=replace(spec.source, kind="sqlite", path=sqlite.path))
    with open_source(sqlite_spec.source).snapshot(sqlite_spec) as snap:
        sqlite_schema = snap.schema()
    assert pg_schema.equals(sqlite_schema)
    assert pg_schema.equals(TRADES_SCHEMA)


def test_values_arrive_exactly(pg_project):
    pg_project.seed(500)
    pg_project.offload()
    hot = pg_project.hot.execute(
        "SELECT sequence_number, (extract(epoch FROM exchange_timestamp) * 1000000)::bigint, "
        f"price::text, quote_volume::text, kafka_partition FROM {TABLE}"
    )
    iceberg = pg_project.catalog().load(pg_project.spec()).scan().to_arrow()
    ts = iceberg.column("exchange_timestamp").cast(pa.int64()).to_pylist()
    rows = {r["sequence_number"]: (r, t) for r, t in zip(iceberg.to_pylist(), ts, strict=True)}
    assert len(rows) == len(hot) == 500
    for seq, micros, price, quote_volume, partition in hot:
        row, row_ts = rows[seq]
        assert row_ts == micros
        assert str(row["price"]) == price and str(row["quote_volume"]) == quote_volume
        assert row["kafka_partition"] == partition


def _ts_seq_config(tmp_path: Path, pg_hot: PostgresHot, table: str) -> Path:
    """A config for one PostgreSQL table with cursor (ts, seq) and key seq."""
    return write_config(
        tmp_path,
        sources={"hot": pg_hot.source()},
        defaults={
            "cursor": {"event_time": "ts", "tie_breaker": "seq"},
            "primary_key": ["seq"],
            "settle_delay_seconds": 0,
        },
        tables=[{"name": table}],
    )


def test_timestamp_without_zone_numeric_and_small_ints_map_onto_iceberg(pg_hot, tmp_path):
    pg_hot.execute(
        "CREATE TABLE plain (ts timestamp NOT NULL, seq integer NOT NULL, amount numeric(10,2), "
        "code smallint, name varchar(20), ok boolean, ratio double precision)"
    )
    pg_hot.execute(
        "INSERT INTO plain VALUES "
        "('2026-03-01 12:00:00.000001', 1, 12345678.91, 7, 'a', true, 0.5),"
        "('2026-03-01 12:00:00.000001', 2, NULL, NULL, NULL, NULL, NULL),"
        "('2026-03-01 12:00:01', 3, -0.01, -3, 'c', false, -1)"
    )
    path = _ts_seq_config(tmp_path, pg_hot, "plain")
    project = Project(tmp_path, path, pg_hot)
    result = project.offload("plain", batch_rows=1)
    # one commit per row: the watermark moves through two rows sharing a microsecond
    assert (result.rows, result.commits) == (3, 3)
    rows = project.catalog().load(project.spec("plain")).scan().to_arrow().sort_by("seq")
    assert rows.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert rows.column("ts").cast(pa.int64()).to_pylist()[0] == 1772366400000001
    assert [str(v) if v is not None else None for v in rows.column("amount").to_pylist()] == [
        "12345678.91",
        None,
        "-0.01",
    ]
    assert rows.column("code").type == pa.int32()
    assert rows.column("name").to_pylist() == ["a", None, "c"]


def test_unmappable_column_fails_naming_it(pg_project):
    pg_project.hot.create_table(TABLE)
    pg_project.hot.execute(f"ALTER TABLE {TABLE} ADD COLUMN payload bytea")
    with pytest.raises(SchemaMismatchError, match="column 'payload'"):
        pg_project.offload()


def test_missing_table_and_bad_sql_are_source_query_errors(pg_project):
    with pytest.raises(SourceQueryError, match="'public.bronze_trades_binance' not found"):
        pg_project.offload()
    pg_project.seed(5)
    spec = pg_project.spec()
    with open_source(spec.source).snapshot(spec) as snap:
        with pytest.raises(SourceQueryError, match="no_such_column") as caught:
            snap.fetch(f"SELECT no_such_column FROM {TABLE}")
    assert not caught.value.retryable


class _Interfering:
    """A real PostgreSQL hot tier that runs ``action`` once the run has read its bound."""

    def __init__(self, tier: Any, action: Any, when: str = "bound") -> None:
        self._tier, self._action, self._when = tier, action, when

    def location(self) -> str:
        return self._tier.location()

    @contextmanager
    def snapshot(self, spec: Any) -> Iterator[Any]:
        with self._tier.snapshot(spec) as snap:
            yield _InterferingSnapshot(snap, self._action, self._when)


class _InterferingSnapshot:
    def __init__(self, snap: Any, action: Any, when: str) -> None:
        self._snap, self._action, self._when = snap, action, when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snap, name)

    def max_event_time(self) -> int | None:
        bound = self._snap.max_event_time()
        if self._when == "bound":
            self._action()
        return bound

    def read(self, window: Window, batch_rows: int) -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(self._snap.read(window, batch_rows)):
            if self._when == "read" and i == 1:
                self._action()
            yield batch


def test_rows_committed_at_the_bound_during_a_run_are_taken_by_the_next_run(pg_project):
    """REPEATABLE READ: the run neither sees nor loses rows another transaction commits at its
    bound while it reads; the next run takes them, and none is miscounted as late."""
    pg_project.seed(5_000)
    spec = pg_project.spec()
    ((bound_us, top_seq),) = pg_project.hot.execute(
        f"SELECT (extract(epoch FROM max(exchange_timestamp)) * 1000000)::bigint, "
        f"max(sequence_number) FROM {TABLE}"
    )

    def commit_rows_at_the_bound() -> None:
        # 50 rows sharing the bound's microsecond, committed by another connection
        pg_project.hot.execute(
            f"INSERT INTO {TABLE} SELECT exchange_timestamp, sequence_number + g, symbol, price, "
            f"quantity, quote_volume, event_time, kafka_offset + g, kafka_partition, "
            f"ingestion_timestamp FROM {TABLE}, generate_series(1, 50) g "
            f"WHERE sequence_number = %s",
            (top_seq,),
        )

    tier = _Interfering(open_source(spec.source), commit_rows_at_the_bound)
    first = pg_project.offload(source=tier, batch_rows=1_000)
    assert first.rows == 5_000
    assert first.watermark.cursor.ts == bound_us and first.watermark.cursor.seq == top_seq
    assert pg_project.hot_count() == 5_050
    second = pg_project.offload()
    assert second.rows == 50
    assert second.late_rows == 0
    check = pg_project.reconcile()
    assert check.ok and check.iceberg_rows == 5_050


def _terminate_run_connections(hot: PostgresHot) -> None:
    hot.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'offload_pipeline' AND pid <> pg_backend_pid() "
        # only this test's database: the server may be shared
        "AND datname = current_database()"
    )


@pytest.mark.parametrize("when", ["bound", "read"])
def test_connection_terminated_mid_run_is_source_unavailable_and_the_next_run_recovers(
    pg_project, when
):
    # ~40 MB of rows: far more than socket buffers hold, so the server is still sending when the
    # connection dies during the second of the 4 MB batches
    pg_project.hot.bulk_load(TABLE, 300_000)
    spec = pg_project.spec()
    tier = _Interfering(
        open_source(spec.source), lambda: _terminate_run_connections(pg_project.hot), when
    )
    with pytest.raises(SourceUnavailableError, match="connection lost") as caught:
        pg_project.offload(source=tier, batch_rows=500_000)
    assert caught.value.retryable
    # nothing of the window was committed: one chunk covers it all
    assert pg_project.catalog().load(spec) is None or pg_project.state().watermark is None
    recovered = pg_project.offload()
    assert recovered.rows == 300_000
    assert pg_project.reconcile().ok


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, Path]]:
    """A PostgreSQL server of this test alone, which the test may stop and start."""
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="offload-pg-own-"))
    parent.chmod(0o755)  # the server's own user (postgres, when running as root) must reach it
    data = parent / "data"
    server = PostgresServer(start_postgres(data))
    yield server, data
    stop_postgres(data)
    shutil.rmtree(parent, ignore_errors=True)


def test_server_stopped_mid_run_is_source_unavailable_and_the_next_run_recovers(
    own_server, tmp_path
):
    server, data = own_server
    hot = PostgresHot(server, server.create_database())
    project = Project(tmp_path, write_config(tmp_path, sources={"hot": hot.source()}), hot)
    hot.bulk_load(TABLE, 300_000)
    spec = project.spec()
    tier = _Interfering(open_source(spec.source), lambda: stop_postgres(data), "read")
    with pytest.raises(SourceUnavailableError) as caught:
        project.offload(source=tier, batch_rows=500_000)
    assert caught.value.retryable
    assert project.catalog().load(spec) is None or project.state().watermark is None
    # while it is down, a run cannot even connect: the same retryable error
    with pytest.raises(SourceUnavailableError, match="cannot connect"):
        project.offload()
    assert start_postgres(data, server.port) == server.url  # back on the same port
    assert project.offload().rows == 300_000
    assert project.reconcile().ok


def test_statement_timeout_is_a_typed_timeout_error(pg_project, tmp_path):
    pg_project.seed(100)
    path = write_config(
        tmp_path, sources={"hot": {**pg_project.hot.source(), "statement_timeout_seconds": 1}}
    )
    spec = load_config(path).table(TABLE)
    assert spec.source.statement_timeout_seconds == 1
    conn = pg_project.hot.server.connect(pg_project.hot.database)
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            # another session holds the table: every read of it waits, up to the timeout
            cur.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(OffloadTimeoutError, match="statement_timeout_seconds=1") as caught:
                pg_project.offload(spec=spec)
        conn.rollback()
    finally:
        conn.close()
    assert caught.value.error_type == "timeout" and caught.value.retryable
    assert pg_project.offload().rows == 100


@pytest.fixture
def secret_role(pg_hot: PostgresHot) -> str:
    """A login role that authenticates with a password (scram) on the test server."""
    pg_hot.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'offload_secret') "
        "THEN CREATE ROLE offload_secret LOGIN; END IF; END $$"
    )
    pg_hot.execute(f"ALTER ROLE offload_secret PASSWORD '{SECRET}'")
    pg_hot.execute("GRANT pg_read_all_data TO offload_secret")
    return "offload_secret"


def test_password_comes_from_the_environment_and_never_shows(
    pg_hot, secret_role, tmp_path, monkeypatch
):
    pg_hot.seed(TABLE, 1_000, span_seconds=600)
    monkeypatch.setenv("HOT_PG_PASSWORD", SECRET)
    source = {**pg_hot.source(), "user": secret_role, "password": "${HOT_PG_PASSWORD}"}
    project = Project(tmp_path, write_config(tmp_path, sources={"hot": source}), pg_hot)
    assert project.offload().rows == 1_000  # the password really authenticates

    status = project.cli("status", "--json", "--table", TABLE)
    assert status.returncode == 0, status.stderr
    entry = json.loads(status.stdout)["tables"][0]
    assert entry["source"] == {
        "kind": "postgres",
        "uri": f"postgresql://{secret_role}@{pg_hot.server.host}:{pg_hot.server.port}/{pg_hot.database}",
        "table": TABLE,
    }
    verify = project.cli("verify", "--table", TABLE)
    assert verify.returncode == 0, verify.stderr
    for output in (status.stdout, status.stderr, verify.stdout, verify.stderr):
        assert SECRET not in output

    monkeypatch.setenv("HOT_PG_PASSWORD", SECRET + "-wrong")
    with pytest.raises(SourceUnavailableError, match="password authentication failed") as caught:
        project.offload()
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.__cause__)
    failed = project.cli("status", "--json")
    assert "password authentication failed" in failed.stdout
    assert SECRET not in failed.stdout + failed.stderr


def test_a_literal_password_in_the_file_is_refused_without_echoing_it(pg_hot, tmp_path):
    from offload_pipeline.errors import ConfigInvalidError

    path = write_config(tmp_path, sources={"hot": {**pg_hot.source(), "password": SECRET}})
    with pytest.raises(ConfigInvalidError, match=r"sources.hot.password: must be a \$\{VAR\}") as e:
        load_config(path)
    assert SECRET not in str(e.value)


def test_one_config_with_a_sqlite_and_a_postgres_table_offloads_both(pg_hot, tmp_path):
    sqlite = SqliteHot(tmp_path / "hot.db")
    sqlite.seed("bronze_trades_kraken", 3_000, span_seconds=600)
    pg_hot.seed(TABLE, 2_000, span_seconds=600)
    path = write_config(
        tmp_path,
        sources={"embedded": sqlite.source(), "pg": pg_hot.source()},
        tables=[
            {"name": "bronze_trades_kraken", "source": "embedded"},
            {"name": TABLE, "source": "pg"},
        ],
    )
    project = Project(tmp_path, path, sqlite)
    run = project.cli("run")
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = {t.name: t.source.kind for t in project.config.tables}
    assert kinds == {"bronze_trades_kraken": "sqlite", TABLE: "postgres"}
    kraken = project.reconcile("bronze_trades_kraken")
    assert kraken.ok and kraken.iceberg_rows == 3_000
    binance = Project(tmp_path, path, pg_hot).reconcile(TABLE)
    assert binance.ok and binance.iceberg_rows == 2_000
    status = json.loads(project.cli("status", "--json").stdout)
    assert {t["name"]: t["source"]["kind"] for t in status["tables"]} == kinds


def test_reads_stream_in_bounded_batches(pg_project):
    """Rows arrive batch by batch while the query runs, not as one result set."""
    pg_project.seed(60_000)
    spec = pg_project.spec()
    with open_source(spec.source).snapshot(spec) as snap:
        sizes = [b.num_rows for b in snap.read(Window(None, 2**62), 10_000)]
    assert sum(sizes) == 60_000
    assert len(sizes) > 1 and max(sizes) < 60_000


@pytest.mark.parametrize("column_type", ["timestamptz", "timestamp"])
def test_count_by_day_cuts_utc_days_and_the_cursor(pg_hot, tmp_path, column_type):
    pg_hot.execute(f"CREATE TABLE days (ts {column_type} NOT NULL, seq bigint NOT NULL)")
    # 2026-03-01 is day 20513 since the epoch; two rows tie at 2026-03-02 00:00:05
    pg_hot.execute(
        "INSERT INTO days VALUES ('2026-02-28 23:59:59.999999', 1), ('2026-03-01 00:00:10', 2), "
        "('2026-03-02 00:00:00', 3), ('2026-03-02 00:00:05', 4), ('2026-03-02 00:00:05', 5), "
        "('2026-03-03 00:00:01', 6)"
    )
    path = _ts_seq_config(tmp_path, pg_hot, "days")
    spec = load_config(path).table("days")
    day = 20513 * DAY
    with open_source(spec.source).snapshot(spec) as snap:
        counts = snap.count_by_day(day, CursorValue(day + DAY + 5 * MICROS, 4))
    assert counts == {day: 1, day + DAY: 2}
