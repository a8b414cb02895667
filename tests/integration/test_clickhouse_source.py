"""The ClickHouse source on the in-process ClickHouse engine (chdb).

The source builds its SQL with plain functions and sends it through a ``clickhouse-connect``
client; here the client is the chdb-backed one of ``clickhouse-connect`` instead of HTTP, so the
exact statements, settings, Arrow decoding, type mapping and error classification of the source
run on a real ClickHouse engine. Only the HTTP transport itself is not exercised.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.types import DecimalType, IntegerType, LongType, StringType, TimestamptzType

from offload_pipeline.config import load_config
from offload_pipeline.core.reconcile import reconcile
from offload_pipeline.core.sources import open_source
from offload_pipeline.core.sources.clickhouse import (
    ClickHouseHotTier,
    clickhouse_arrow_type,
    clickhouse_nullable,
    count_between_sql,
    count_by_day_sql,
    max_event_time_sql,
    null_count_sql,
    schema_sql,
)
from offload_pipeline.core.window import DAY, MICROS, CursorValue, Window
from offload_pipeline.demo.feed import TRADES_SCHEMA
from offload_pipeline.errors import (
    NullCursorError,
    OffloadTimeoutError,
    SchemaMismatchError,
    SourceQueryError,
    SourceUnavailableError,
)
from tests.conftest import Project, write_config
from tests.hot_tiers import ClickHouseHot

pytestmark = [pytest.mark.integration, pytest.mark.clickhouse]
TABLE = "bronze_trades_binance"


@pytest.fixture(scope="session")
def chdb_client() -> Iterator[Any]:
    """One in-process engine per process (a chdb limit); each test gets its own database."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(
        interface="chdb", path=tempfile.mkdtemp(prefix="offload-chdb-")
    )
    yield client
    client.close()


@pytest.fixture
def ch(chdb_client: Any) -> Iterator[ClickHouseHot]:
    hot = ClickHouseHot(chdb_client, f"hot_{uuid.uuid4().hex[:10]}")
    yield hot
    chdb_client.command(f"DROP DATABASE IF EXISTS `{hot.database}`")


@pytest.fixture
def ch_project(tmp_path: Path, ch: ClickHouseHot) -> Project:
    source = {"kind": "clickhouse", "host": "clickhouse.invalid", "database": ch.database}
    return Project(tmp_path, write_config(tmp_path, sources={"hot": source}), ch)


def tier(project: Project, client: Any) -> ClickHouseHotTier:
    """The project's ClickHouse source, its queries sent to the in-process engine."""
    return ClickHouseHotTier(project.spec().source, client_factory=lambda _source: _Shared(client))


class _Shared:
    """The session's chdb client, not closed by a snapshot (the engine lives for the session)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        pass


def offload(project: Project, client: Any, **run: Any):
    run.setdefault("batch_rows", 10_000)
    return project.offload(source=tier(project, client), **run)


def test_the_demo_table_maps_onto_the_same_schema_as_sqlite_and_postgres(ch_project, chdb_client):
    ch_project.seed(10)
    with tier(ch_project, chdb_client).snapshot(ch_project.spec()) as snap:
        assert snap.schema().equals(TRADES_SCHEMA)
    offload(ch_project, chdb_client)
    types = {
        f.name: f.field_type for f in ch_project.catalog().load(ch_project.spec()).schema().fields
    }
    assert types["exchange_timestamp"] == TimestamptzType()
    assert types["price"] == DecimalType(18, 8)
    assert types["symbol"] == StringType()  # LowCardinality(String)
    assert types["sequence_number"] == LongType()
    assert types["kafka_partition"] == IntegerType()


def test_offload_with_ties_on_the_cursor_is_exactly_once(ch_project, chdb_client):
    ch_project.seed(30_000, tie_fraction=0.9)
    result = offload(ch_project, chdb_client, batch_rows=997)
    assert result.rows == 30_000 and result.commits > 20
    ch_project.seed(5_000, tie_fraction=0.5)
    assert offload(ch_project, chdb_client).rows == 5_000
    check = reconcile(ch_project.table(source=tier(ch_project, chdb_client)))
    assert check.ok and check.iceberg_rows == 35_000


def test_values_arrive_exactly(ch_project, chdb_client):
    ch_project.seed(300)
    offload(ch_project, chdb_client)
    hot = chdb_client.query(
        "SELECT sequence_number, toUnixTimestamp64Micro(exchange_timestamp), toString(price), "
        f"symbol FROM `{ch_project.hot.database}`.`{TABLE}`"
    ).result_rows
    iceberg = ch_project.catalog().load(ch_project.spec()).scan().to_arrow()
    micros = iceberg.column("exchange_timestamp").cast(pa.int64()).to_pylist()
    by_seq = {
        r["sequence_number"]: (r, t) for r, t in zip(iceberg.to_pylist(), micros, strict=True)
    }
    assert len(hot) == len(by_seq) == 300
    for seq, ts, price, symbol in hot:
        row, row_ts = by_seq[seq]
        assert row_ts == ts
        assert row["price"] == pa.scalar(price).cast(pa.decimal128(18, 8)).as_py()
        assert row["symbol"] == symbol


def test_names_in_the_schema_query_are_string_literals_not_sql(ch_project, chdb_client):
    db = ch_project.hot.database
    chdb_client.command(f"CREATE TABLE `{db}`.s (ts DateTime64(6, 'UTC')) ENGINE = Memory")
    assert chdb_client.query(schema_sql(db, "s")).result_rows == [("ts", "DateTime64(6, 'UTC')")]
    # a quote or backslash in a name stays inside the literal: no rows, no injected condition
    for name in ("s' OR '1'='1", "s\\' OR 1 --"):
        assert chdb_client.query(schema_sql(db, name)).result_rows == []


def test_window_bounds_and_ties_in_the_generated_sql(ch_project, chdb_client):
    db = ch_project.hot.database
    chdb_client.command(
        f"CREATE TABLE `{db}`.t (ts DateTime64(6, 'UTC'), seq Int64, v LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY (ts, seq)"
    )
    # three rows share the microsecond 2_000_000; the window starts inside that group
    chdb_client.command(
        f"INSERT INTO `{db}`.t VALUES (1.000001, 1, 'a'), (2, 2, 'b'), (2, 3, 'c'), (2, 4, 'd'), "
        "(3.5, 5, 'e')"
    )
    assert chdb_client.query(max_event_time_sql(db, "t", "ts")).result_rows == [(3_500_000,)]
    sql = count_between_sql(db, "t", "ts", "seq", 1_000_001, CursorValue(2_000_000, 3))
    assert chdb_client.query(sql).result_rows == [(3,)]
    path = write_config(
        ch_project.dir,
        sources={"hot": {"kind": "clickhouse", "host": "h", "database": db}},
        defaults={
            "cursor": {"event_time": "ts", "tie_breaker": "seq"},
            "primary_key": ["seq"],
            "settle_delay_seconds": 0,
        },
        tables=[{"name": "t"}],
    )
    spec = load_config(path).table("t")
    hot = ClickHouseHotTier(spec.source, client_factory=lambda _s: _Shared(chdb_client))
    with hot.snapshot(spec) as snap:
        window = Window(CursorValue(2_000_000, 2), 2_000_000)
        rows = pa.Table.from_batches(list(snap.read(window, 100)))
        assert rows.column("seq").to_pylist() == [3, 4]  # after (2 s, 2), up to 2 s inclusive
        assert rows.column("v").type == pa.string()
        everything = pa.Table.from_batches(list(snap.read(Window(None, 2**62), 100)))
        assert everything.column("seq").to_pylist() == [1, 2, 3, 4, 5]
        assert snap.keys(("seq",), CursorValue(2_000_000, 3)).column("seq").to_pylist() == [
            1,
            2,
            3,
        ]
    with ClickHouseHotTier(spec.source, client_factory=lambda _s: _Shared(chdb_client)).snapshot(
        spec
    ) as snap:
        chdb_client.command(f"TRUNCATE TABLE `{db}`.t")
        assert snap.max_event_time() is None


def test_count_by_day_cuts_utc_days_and_the_cursor(ch, chdb_client):
    db = ch.database
    chdb_client.command(
        f"CREATE TABLE `{db}`.d (ts DateTime64(6, 'UTC'), seq Int64) ENGINE = MergeTree "
        "ORDER BY (ts, seq)"
    )
    # days 1 and 2 after the epoch; two rows tie at day 2 + 5 s, the cut falls between them
    rows = [(DAY - 1, 1), (DAY + 10 * MICROS, 2), (2 * DAY, 3), (2 * DAY + 5 * MICROS, 4)]
    rows += [(2 * DAY + 5 * MICROS, 5), (3 * DAY + 1, 6)]
    values = ", ".join(f"(fromUnixTimestamp64Micro(toInt64({ts}), 'UTC'), {s})" for ts, s in rows)
    chdb_client.command(f"INSERT INTO `{db}`.d SELECT * FROM (SELECT * FROM VALUES({values}))")
    sql = count_by_day_sql(db, "d", "ts", "seq", DAY, CursorValue(2 * DAY + 5 * MICROS, 4))
    assert sorted(chdb_client.query(sql).result_rows) == [(0, 1), (1, 2)]


@pytest.mark.parametrize(
    ("declared", "arrow", "nullable"),
    [
        ("DateTime64(6, 'UTC')", pa.timestamp("us", tz="UTC"), False),
        ("DateTime64(3, 'Europe/Berlin')", pa.timestamp("us", tz="UTC"), False),
        ("DateTime", pa.timestamp("us", tz="UTC"), False),
        ("Decimal(18, 8)", pa.decimal128(18, 8), False),
        ("Nullable(Decimal(38, 10))", pa.decimal128(38, 10), True),
        ("LowCardinality(String)", pa.string(), False),
        ("LowCardinality(Nullable(String))", pa.string(), True),
        ("FixedString(3)", pa.string(), False),
        ("UInt32", pa.int64(), False),
        ("Int16", pa.int32(), False),
        ("Float32", pa.float64(), False),
    ],
)
def test_type_mapping(declared, arrow, nullable):
    assert clickhouse_arrow_type("t", "c", declared) == arrow
    assert clickhouse_nullable(declared) is nullable


def _own_table(
    ch_project: Project, chdb_client: Any, table: str
) -> tuple[Project, Any, ClickHouseHotTier]:
    """A project of the one table ``table`` (cursor ``ts``, ``seq``) in the test's database."""
    path = write_config(
        ch_project.dir,
        sources={"hot": {"kind": "clickhouse", "host": "h", "database": ch_project.hot.database}},
        defaults={
            "cursor": {"event_time": "ts", "tie_breaker": "seq"},
            "primary_key": ["seq"],
            "settle_delay_seconds": 0,
        },
        tables=[{"name": table}],
    )
    project = Project(ch_project.dir, path, ch_project.hot)
    spec = project.spec(table)
    hot = ClickHouseHotTier(spec.source, client_factory=lambda _s: _Shared(chdb_client))
    return project, spec, hot


def test_other_precisions_and_zones_arrive_as_the_same_instant(ch_project, chdb_client):
    db = ch_project.hot.database
    chdb_client.command(
        f"CREATE TABLE `{db}`.z (ts DateTime64(3, 'Asia/Tokyo'), seq UInt32, "
        "code FixedString(3), n Nullable(Int16)) ENGINE = MergeTree ORDER BY (ts, seq)"
    )
    chdb_client.command(
        f"INSERT INTO `{db}`.z VALUES ('2026-03-01 21:00:00.123', 1, 'abc', NULL), "
        "('2026-03-01 21:00:01', 2, 'xyz', -4)"
    )
    project, spec, hot = _own_table(ch_project, chdb_client, "z")
    result = project.offload("z", source=hot)
    assert result.rows == 2
    rows = project.catalog().load(spec).scan().to_arrow().sort_by("seq")
    # 21:00 in Tokyo is 12:00 UTC
    assert rows.column("ts").cast(pa.int64()).to_pylist() == [1772366400123000, 1772366401000000]
    assert rows.column("code").to_pylist() == ["abc", "xyz"]
    assert rows.column("n").to_pylist() == [None, -4]
    assert result.watermark.cursor == CursorValue(1772366401000000, 2)


def test_a_nullable_event_time_holding_null_refuses_the_run(ch_project, chdb_client):
    db = ch_project.hot.database
    chdb_client.command(
        f"CREATE TABLE `{db}`.n (ts Nullable(DateTime64(6, 'UTC')), seq Int64) "
        "ENGINE = MergeTree ORDER BY seq"
    )
    chdb_client.command(f"INSERT INTO `{db}`.n VALUES ('2026-03-01 12:00:00', 1), (NULL, 2)")
    assert chdb_client.query(null_count_sql(db, "n", "ts")).result_rows == [(1,)]
    assert chdb_client.query(null_count_sql(db, "n", "seq")).result_rows == [(0,)]
    project, spec, hot = _own_table(ch_project, chdb_client, "n")
    with pytest.raises(NullCursorError, match="1 row\\(s\\) with 'ts' NULL"):
        project.offload("n", source=hot)
    assert project.catalog().load(spec) is None


def test_missing_table_is_a_source_query_error(ch_project, chdb_client):
    with pytest.raises(SourceQueryError, match="not found"):
        offload(ch_project, chdb_client)
    ch_project.seed(5)
    with tier(ch_project, chdb_client).snapshot(ch_project.spec()) as snap:
        with pytest.raises(SourceQueryError, match="UNKNOWN_IDENTIFIER|no_such") as caught:
            list(snap._stream("SELECT no_such FROM system.one", snap.schema()))  # noqa: SLF001
    assert not caught.value.retryable


def test_unmappable_type_fails_naming_the_column(ch_project, chdb_client):
    ch_project.seed(5)
    chdb_client.command(
        f"ALTER TABLE `{ch_project.hot.database}`.`{TABLE}` ADD COLUMN tags Array(String)"
    )
    with pytest.raises(SchemaMismatchError, match="column 'tags'"):
        offload(ch_project, chdb_client)


def test_statement_timeout_is_a_typed_timeout_error(ch_project, chdb_client):
    ch_project.seed(50)
    db = ch_project.hot.database
    # a view whose every row takes 50 ms: 2.5 s, slower than the 1 s statement timeout
    chdb_client.command(
        f"CREATE VIEW `{db}`.slow AS SELECT *, sleepEachRow(0.05) AS pause FROM `{db}`.`{TABLE}`"
    )
    path = write_config(
        ch_project.dir,
        sources={
            "hot": {
                "kind": "clickhouse",
                "host": "h",
                "database": db,
                "statement_timeout_seconds": 1,
            }
        },
        tables=[{"name": TABLE, "source_table": "slow"}],
    )
    spec = load_config(path).table(TABLE)
    hot = ClickHouseHotTier(spec.source, client_factory=lambda _s: _Shared(chdb_client))
    with pytest.raises(OffloadTimeoutError, match="statement_timeout_seconds=1") as caught:
        Project(ch_project.dir, path).offload(source=hot, batch_rows=10)
    assert caught.value.retryable


def test_config_and_location_without_password(tmp_path, monkeypatch):
    monkeypatch.setenv("CH_PASSWORD", "ch-s3cret")
    path = write_config(
        tmp_path,
        sources={
            "hot": {
                "kind": "clickhouse",
                "host": "ch.example",
                "user": "offload",
                "password": "${CH_PASSWORD}",
                "secure": True,
                "database": "bronze",
            }
        },
    )
    source = load_config(path).sources["hot"]
    assert (source.port, source.password, source.statement_timeout_seconds) == (
        8443,
        "ch-s3cret",
        600,
    )
    location = open_source(source).location()
    assert location == "clickhousedb://offload@ch.example:8443/bronze?protocol=https"
    assert "ch-s3cret" not in repr(source)


def test_unreachable_server_over_http_is_source_unavailable(tmp_path):
    """The one HTTP path that runs here: nothing listens on the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = {"kind": "clickhouse", "host": "127.0.0.1", "port": port, "connect_timeout_seconds": 2}
    spec = load_config(write_config(tmp_path, sources={"hot": source})).table(TABLE)
    with pytest.raises(SourceUnavailableError, match="cannot connect"):
        with open_source(spec.source).snapshot(spec):
            pass
