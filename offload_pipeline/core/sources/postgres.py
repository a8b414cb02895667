"""The PostgreSQL hot tier: Arrow-native reads through ADBC, in one REPEATABLE READ snapshot.

Every statement of a run (the bound, the late-row counts, the rows) runs in one
``REPEATABLE READ, READ ONLY`` transaction, so a transaction that commits rows at the bound while
the run reads is either wholly in the snapshot or wholly after it: never half read, never skipped.
Rows stream as ``COPY (SELECT …) TO STDOUT (FORMAT binary)`` through the ADBC driver, batch by
batch, so memory is bounded by the batch size and not by the window.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote as url_quote

import pyarrow as pa

from offload_pipeline.config import SourceSpec, TableSpec
from offload_pipeline.core.sources._common import (
    TIMESTAMP,
    Failure,
    arrow_schema,
    conform_batch,
    driver_error,
    null_count_sql,
    null_cursor_counts,
    nullable_columns,
    quote,
)
from offload_pipeline.core.window import MICROS, CursorValue, Window
from offload_pipeline.errors import OffloadError, SchemaMismatchError

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ADBC's COPY reader cuts a batch after about this many bytes; the core regroups batches
BATCH_BYTES = 4 * 2**20

_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")
_PG_TYPES: dict[str, pa.DataType] = {
    "timestamp with time zone": TIMESTAMP,
    "timestamp without time zone": TIMESTAMP,
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int32(),
    "double precision": pa.float64(),
    "real": pa.float64(),
    "text": pa.string(),
    "boolean": pa.bool_(),
}
# SQLSTATE classes meaning "the server is not there for us right now": connection exceptions,
# shutdown/termination, too many connections, out of resources
_UNAVAILABLE_STATES = ("08", "57P", "53")
_TIMEOUT_STATE = "57014"
# libpq reports a dropped connection without a SQLSTATE
_CONNECTION_LOST = re.compile(
    r"server closed the connection|terminating connection|connection to server|"
    r"no connection to the server|could not receive data|could not send data|"
    r"connection .*(?:lost|reset|refused)|SSL SYSCALL|EOF detected|Failed to connect",
    re.IGNORECASE,
)


def postgres_arrow_type(table: str, column: str, declared: str) -> pa.DataType:
    """Map a PostgreSQL column type (as ``format_type`` spells it) onto Arrow.

    ``timestamp`` without time zone is taken as UTC, like the SQLite convention.
    """
    text = declared.strip().lower().replace(" ", "").replace("timestamp(6)", "timestamp")
    if match := _NUMERIC.match(text):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    plain = declared.strip().lower()
    plain = re.sub(r"\(\d+\)", "", plain)  # timestamp(3) with time zone, varchar(20), …
    plain = re.sub(r"\s+", " ", plain).strip()
    if plain.startswith(("character varying", "character", "varchar", "char")):
        return pa.string()
    if plain in _PG_TYPES:
        return _PG_TYPES[plain]
    raise SchemaMismatchError(
        f"table '{table}': column '{column}': postgres type {declared!r} has no Iceberg mapping "
        "(use timestamptz, timestamp, numeric(p,s), bigint, integer, smallint, double precision, "
        "text, varchar or boolean)"
    )


def timestamp_literal(micros: int, with_time_zone: bool = True) -> str:
    """An exact SQL literal for µs since the epoch (no float rounding, index-friendly)."""
    kind = "timestamptz" if with_time_zone else "timestamp"
    try:
        text = (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f")
    except OverflowError:  # an open-ended bound beyond year 9999
        return f"'{'infinity' if micros > 0 else '-infinity'}'::{kind}"
    return f"'{text}+00'::timestamptz" if with_time_zone else f"'{text}'::timestamp"


class PostgresHotTier:
    """A PostgreSQL database holding bronze tables, read through ``adbc-driver-postgresql``."""

    def __init__(self, source: SourceSpec) -> None:
        self.source = source

    def location(self) -> str:
        s = self.source
        user = url_quote(s.user, safe="")
        return f"postgresql://{user}@{s.host}:{s.port}/{url_quote(s.database, safe='')}"

    def _uri(self) -> str:
        s = self.source
        auth = url_quote(s.user, safe="")
        if s.password:
            auth += ":" + url_quote(s.password, safe="")
        params = [
            f"connect_timeout={max(1, int(s.connect_timeout_seconds))}",
            "application_name=offload_pipeline",
        ]
        if s.sslmode:
            params.append(f"sslmode={s.sslmode}")
        database = url_quote(s.database, safe="")
        return f"postgresql://{auth}@{s.host}:{s.port}/{database}?{'&'.join(params)}"

    def connected(self) -> AbstractContextManager[None]:
        """One connection per snapshot: only SQLite's schema parse made sharing pay."""
        return nullcontext()

    @contextmanager
    def snapshot(self, spec: TableSpec) -> Iterator[PostgresSnapshot]:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            conn = adbc.connect(self._uri(), autocommit=True)
        except Exception as e:
            raise driver_error(e, spec, self.location(), "connect") from None
        try:
            snap = PostgresSnapshot(conn, spec, self)
            timeout_ms = int(self.source.statement_timeout_seconds * 1000)
            snap.execute(f"SET statement_timeout = {timeout_ms}")
            snap.execute("SET TIME ZONE 'UTC'")
            # explicit transaction on an autocommit connection: ADBC's own transaction handling
            # would start it before the isolation level could be chosen
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield snap
        finally:
            try:
                conn.close()  # closing the session ends the read-only transaction
            except Exception as e:  # noqa: BLE001 - a lost connection has nothing left to close
                log.debug("table %s: closing the hot-tier connection: %s", spec.name, e)


class PostgresSnapshot:
    """One REPEATABLE READ transaction on one PostgreSQL table."""

    def __init__(self, conn: Any, spec: TableSpec, tier: PostgresHotTier) -> None:
        self._conn = conn
        self._spec = spec
        self._tier = tier
        self._table = f"{quote(tier.source.schema)}.{quote(spec.source_table)}"
        self._ts = quote(spec.cursor.event_time)
        self._seq = quote(spec.cursor.tie_breaker)
        self._schema: pa.Schema | None = None
        self._declared: dict[str, str] = {}
        self._nullable: frozenset[str] = frozenset()

    def schema(self) -> pa.Schema:
        if self._schema is None:
            sql = (
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE n.nspname = '{self._tier.source.schema}' "
                f"AND c.relname = '{self._spec.source_table}' "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
            )
            rows = self.fetch(sql)
            self._declared = {name: declared for name, declared, _ in rows}
            self._nullable = nullable_columns(rows)
            self._schema = arrow_schema(
                self._spec,
                rows,
                postgres_arrow_type,
                qualified_name=f"{self._tier.source.schema}.{self._spec.source_table}",
                location=self._tier.location(),
            )
        return self._schema

    def max_event_time(self) -> int | None:
        (value,) = self.fetch(f"SELECT max({self._ts}) FROM {self._table}")[0]
        return _micros(value)

    def count_between(self, lo_ts: int, hi: CursorValue) -> int:
        sql = (
            f"SELECT count(*) FROM {self._table} WHERE {self._ts} >= {self._lit(lo_ts)} "
            f"AND ({self._ts}, {self._seq}) <= ({self._lit(hi.ts)}, {int(hi.seq)})"
        )
        return int(self.fetch(sql)[0][0])

    def count_by_day(self, lo_ts: int, hi: CursorValue) -> dict[int, int]:
        # the session's time zone is UTC, so date_trunc cuts at UTC midnight for either column
        # type, and a plain timestamp's epoch is taken as UTC like everywhere else
        sql = (
            f"SELECT extract(epoch FROM date_trunc('day', {self._ts}))::bigint, count(*) "
            f"FROM {self._table} WHERE {self._ts} >= {self._lit(lo_ts)} "
            f"AND ({self._ts}, {self._seq}) <= ({self._lit(hi.ts)}, {int(hi.seq)}) GROUP BY 1"
        )
        return {int(seconds) * MICROS: int(n) for seconds, n in self.fetch(sql)}

    def read(self, window: Window, batch_rows: int) -> Iterator[pa.RecordBatch]:
        columns = ", ".join(_select_expression(f) for f in self.schema())
        where = f"{self._ts} <= {self._lit(window.hi_ts)}"
        if window.lo is not None:
            # a row comparison lets PostgreSQL use a (ts, seq) index from the watermark on
            lo = f"({self._lit(window.lo.ts)}, {int(window.lo.seq)})"
            where = f"({self._ts}, {self._seq}) > {lo} AND {where}"
        sql = f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY {self._ts}, {self._seq}"
        yield from self._stream(sql, self.schema())

    def keys(self, columns: tuple[str, ...], upto: CursorValue) -> pa.Table:
        schema = pa.schema([self.schema().field(c) for c in columns])
        sql = (
            f"SELECT {', '.join(_select_expression(f) for f in schema)} FROM {self._table} "
            f"WHERE ({self._ts}, {self._seq}) <= ({self._lit(upto.ts)}, {int(upto.seq)})"
        )
        return pa.Table.from_batches(list(self._stream(sql, schema)), schema=schema)

    def null_cursor_rows(self) -> dict[str, int]:
        self.schema()  # learns which columns may hold NULL
        sql = null_count_sql(self._table)
        return null_cursor_counts(self._spec, self._nullable, lambda c: self.fetch(sql(c))[0][0])

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of a small query."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
        except Exception as e:
            raise self._error(e) from e
        finally:
            _close(cursor)

    def execute(self, sql: str) -> None:
        """A statement without a result."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql)
        except Exception as e:
            raise self._error(e) from e
        finally:
            _close(cursor)

    def _lit(self, micros: int) -> str:
        return timestamp_literal(micros, self._event_time_has_zone())

    def _event_time_has_zone(self) -> bool:
        # a plain timestamp column compares against plain timestamp literals (no zone shift)
        self.schema()
        return "with time zone" in self._declared.get(self._spec.cursor.event_time, "")

    def _stream(self, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        cursor = self._conn.cursor()
        try:
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)}
            )
            cursor.execute(sql)
            for batch in cursor.fetch_record_batch():
                yield conform_batch(batch, schema, self._spec.name)
        except OffloadError:
            raise
        except Exception as e:
            raise self._error(e) from e
        finally:
            _close(cursor)

    def _error(self, e: BaseException) -> OffloadError:
        return driver_error(e, self._spec, self._tier.location(), _failure(e))


def _failure(e: BaseException) -> Failure:
    """What a driver exception means, by SQLSTATE (libpq reports a lost connection without)."""
    state = getattr(e, "sqlstate", None) or ""
    if state == _TIMEOUT_STATE:
        return "timeout"
    if state.startswith(_UNAVAILABLE_STATES) or (not state and _CONNECTION_LOST.search(str(e))):
        return "lost"
    return "query"


def _select_expression(field: pa.Field) -> str:
    column = quote(field.name)
    if pa.types.is_decimal(field.type):
        return f"{column}::text"  # exact digits; Arrow parses them into decimal128
    if pa.types.is_int32(field.type):
        return f"{column}::integer"  # smallint widened to Iceberg int
    if pa.types.is_float64(field.type):
        return f"{column}::double precision"
    return column


def _micros(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (moment - EPOCH) // timedelta(microseconds=1)
    if isinstance(value, int):
        return value
    raise TypeError(f"not a timestamp: {value!r}")


def _close(cursor: Any) -> None:
    try:
        cursor.close()
    except Exception as e:  # noqa: BLE001 - a lost connection leaves nothing to close
        log.debug("closing a hot-tier cursor: %s", e)
