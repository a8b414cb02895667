"""Test-side handles on real hot tiers: seed demo trades, count rows, run SQL.

One interface over SQLite, PostgreSQL and ClickHouse so behaviour suites run against each; the demo
table's PostgreSQL and ClickHouse DDL lives here (the embedded SQLite one is the demo feed's).
"""

from __future__ import annotations

import random
import re
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow as pa

from offload_pipeline.core.window import MICROS
from offload_pipeline.demo.feed import (
    TRADES_SCHEMA,
    connect,
    create_table,
    seed,
    trade_rows,
    trade_timestamps,
)

ROOT = Path(__file__).resolve().parents[1]
START_POSTGRES = ROOT / "scripts" / "start-postgres.sh"
DEMO_TABLES = ("bronze_trades_binance", "bronze_trades_kraken", "bronze_trades_coinbase")


def postgres_table_ddl(table: str) -> list[str]:
    """The demo bronze table in PostgreSQL, with its cursor index."""
    return [
        f"""CREATE TABLE IF NOT EXISTS "{table}" (
            exchange_timestamp timestamptz NOT NULL,
            sequence_number bigint NOT NULL PRIMARY KEY,
            symbol text NOT NULL,
            price numeric(18,8) NOT NULL,
            quantity numeric(18,8) NOT NULL,
            quote_volume numeric(18,8) NOT NULL,
            event_time timestamptz NOT NULL,
            kafka_offset bigint NOT NULL,
            kafka_partition integer NOT NULL,
            ingestion_timestamp timestamptz NOT NULL
        )""",
        f'CREATE INDEX IF NOT EXISTS "{table}_cursor" '
        f'ON "{table}" (exchange_timestamp, sequence_number)',
    ]


def clickhouse_table_ddl(database: str, table: str) -> str:
    """The demo bronze table in ClickHouse, sorted by its cursor."""
    return f"""CREATE TABLE IF NOT EXISTS `{database}`.`{table}` (
        exchange_timestamp DateTime64(6, 'UTC'),
        sequence_number Int64,
        symbol LowCardinality(String),
        price Decimal(18, 8),
        quantity Decimal(18, 8),
        quote_volume Decimal(18, 8),
        event_time DateTime64(6, 'UTC'),
        kafka_offset Int64,
        kafka_partition Int32,
        ingestion_timestamp DateTime64(6, 'UTC')
    ) ENGINE = MergeTree ORDER BY (exchange_timestamp, sequence_number)"""


def null_cursor_row_sql(table: str, column: str) -> str:
    """Insert a copy of the newest demo trade with ``column`` NULL and a new sequence number."""
    values = [
        "NULL" if name == column else f"{name} + 1000000" if name == "sequence_number" else name
        for name in TRADES_SCHEMA.names
    ]
    return (
        f'INSERT INTO "{table}" ({", ".join(TRADES_SCHEMA.names)}) SELECT {", ".join(values)} '
        f'FROM "{table}" ORDER BY sequence_number DESC LIMIT 1'
    )


def trades_table(
    timestamps: list[int], seq: int, offset: int, rng: random.Random, now_us: int
) -> pa.Table:
    """Trades at ``timestamps`` as an Arrow table of ``TRADES_SCHEMA``, sequence from ``seq``."""
    rows = list(trade_rows(timestamps, seq, offset, rng, now_us))
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(TRADES_SCHEMA)
    arrays = [
        pa.array(
            [Decimal(v) for v in values] if pa.types.is_decimal(field.type) else values,
            pa.int64() if pa.types.is_timestamp(field.type) else field.type,
        ).cast(field.type)
        for field, values in zip(TRADES_SCHEMA, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=TRADES_SCHEMA)


def start_postgres(data_dir: Path | None = None, port: int | None = None) -> str:
    """A running PostgreSQL server (the script reuses or starts one); its URL. Fails loudly."""
    args = ["bash", str(START_POSTGRES)] + ([str(data_dir)] if data_dir else [])
    args += [str(port)] if port else []
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            "the test suite needs a PostgreSQL server and could not start one "
            f"({START_POSTGRES.name} exit {done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout.strip().splitlines()[-1]


def stop_postgres(data_dir: Path) -> None:
    subprocess.run(["bash", str(START_POSTGRES), "--stop", str(data_dir)], check=True, timeout=60)


@dataclass
class PostgresServer:
    """A reachable server: host, port, superuser ``postgres`` (trust on loopback)."""

    url: str

    @property
    def host(self) -> str:
        return self.url.split("@", 1)[1].split(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def connect(self, database: str = "postgres") -> Any:
        conn = psycopg2.connect(host=self.host, port=self.port, user="postgres", dbname=database)
        conn.autocommit = True
        return conn

    def create_database(self) -> str:
        name = f"offload_test_{uuid.uuid4().hex[:12]}"
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


class SqliteHot:
    """The embedded SQLite hot tier of a test project."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def source(self) -> dict[str, Any]:
        return {"kind": "sqlite", "path": str(self.path)}

    def seed(self, table: str, rows: int, **kwargs: Any) -> None:
        seed(self.path, [table], rows, **kwargs)

    def count(self, table: str) -> int:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with connect(self.path) as conn:
            return conn.execute(sql, params).fetchall()

    def allow_null(self, table: str, column: str) -> None:
        """Drop the NOT NULL of ``column`` (SQLite rebuilds the table to change a column)."""
        with connect(self.path) as conn:
            (ddl,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_old"')
            conn.execute(re.sub(rf"(\b{column}\s+\w+)\s+NOT NULL", r"\1", ddl))
            conn.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_old"')
            conn.execute(f'DROP TABLE "{table}_old"')
            create_table(conn, table)  # the cursor index

    def add_null_cursor_row(self, table: str, column: str) -> None:
        self.allow_null(table, column)
        self.execute(null_cursor_row_sql(table, column))


class PostgresHot:
    """A throwaway PostgreSQL database holding the demo tables."""

    kind = "postgres"

    def __init__(self, server: PostgresServer, database: str) -> None:
        self.server = server
        self.database = database

    def source(self) -> dict[str, Any]:
        return {
            "kind": "postgres",
            "host": self.server.host,
            "port": self.server.port,
            "database": self.database,
            "user": "postgres",
        }

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.server.connect(self.database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create_table(self, table: str) -> None:
        for statement in postgres_table_ddl(table):
            self.execute(statement)

    def seed(
        self,
        table: str,
        rows: int,
        *,
        span_seconds: float = 3600.0,
        late_fraction: float = 0.0,
        tie_fraction: float = 0.1,
        watermarks: dict[str, int | None] | None = None,
        now: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """The trades ``demo.feed.seed`` writes into SQLite, continuing after the newest row."""
        import adbc_driver_postgresql.dbapi as adbc

        rng = rng or random.Random()
        self.create_table(table)
        now_us = int((now if now is not None else time.time()) * MICROS)
        ((newest, seq, offset),) = self.execute(
            "SELECT (extract(epoch FROM max(exchange_timestamp)) * 1000000)::bigint, "
            "coalesce(max(sequence_number), 0) + 1, coalesce(max(kafka_offset), 0) + 1 "
            f'FROM "{table}"'
        )
        start_us = max(now_us - int(span_seconds * MICROS), (newest or 0) + 1)
        stamps = trade_timestamps(
            rng,
            rows,
            start_us,
            now_us,
            tie_fraction=tie_fraction,
            late_fraction=late_fraction,
            watermark=(watermarks or {}).get(table),
        )
        data = trades_table(stamps, seq, offset, rng, now_us)
        with adbc.connect(self.url, autocommit=True) as conn, conn.cursor() as cur:
            cur.adbc_ingest(table, data, mode="append")

    def bulk_load(self, table: str, rows: int, span_seconds: float = 3600.0) -> None:
        """``rows`` trades generated inside PostgreSQL (fast for large tables), ending 1 s ago."""
        self.create_table(table)
        self.execute(
            f"INSERT INTO \"{table}\" SELECT ts, g, (ARRAY['BTCUSDT', 'ETHUSDT'])[g %% 2 + 1], "
            "round((1000 + random() * 1000)::numeric, 8), round(random()::numeric, 8), "
            "round((random() * 1000)::numeric, 8), ts, g, (g %% 6)::int, now() "
            "FROM (SELECT g, now() - make_interval(secs => %s * (1 - g::float8 / %s)) "
            "- interval '1 second' AS ts FROM generate_series(1, %s) g) s",
            (span_seconds, rows, rows),
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.server.host}:{self.server.port}/{self.database}"

    def add_null_cursor_row(self, table: str, column: str) -> None:
        self.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP NOT NULL')
        self.execute(null_cursor_row_sql(table, column))

    def count(self, table: str) -> int:
        return self.execute(f'SELECT count(*) FROM "{table}"')[0][0]


class ClickHouseHot:
    """A database in the in-process ClickHouse engine holding the demo tables."""

    kind = "clickhouse"

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database
        client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")

    def seed(self, table: str, rows: int, *, span_seconds: float = 3600.0, **kwargs: Any) -> None:
        rng = kwargs.pop("rng", None) or random.Random()
        now_us = int(time.time() * MICROS)
        self.client.command(clickhouse_table_ddl(self.database, table))
        newest, seq, offset = self.client.query(
            "SELECT if(count() = 0, 0, toUnixTimestamp64Micro(max(exchange_timestamp))), "
            "max(sequence_number) + 1, max(kafka_offset) + 1 "
            f"FROM `{self.database}`.`{table}`"
        ).result_rows[0]
        start_us = max(now_us - int(span_seconds * MICROS), int(newest) + 1)
        stamps = trade_timestamps(rng, rows, start_us, now_us, **kwargs)
        data = trades_table(stamps, int(seq), int(offset), rng, now_us)
        self.client.insert_arrow(f"`{self.database}`.`{table}`", data)

    def count(self, table: str) -> int:
        return int(
            self.client.query(f"SELECT count() FROM `{self.database}`.`{table}`").result_rows[0][0]
        )
