"""The ClickHouse hot tier: Arrow streaming over HTTP with ``clickhouse-connect``.

ClickHouse has no multi-statement snapshot. A run reads the bound first and then only rows with
cursor ``<= bound``; inserted parts never become invisible again, so every row visible when the
bound was read is read. A row that becomes visible later with an event time at or below the bound
(older than the settle delay) is a late row: counted, reported, repaired by a backfill
(``docs/production-sources.md`` explains how the settle delay covers async inserts).

The SQL is built by plain functions (``*_sql``) so the exact statements the source sends can be
run on any ClickHouse engine, including the in-process one the tests use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import pyarrow as pa

from offload_pipeline.config import SourceSpec, TableSpec
from offload_pipeline.core.sources._common import (
    TIMESTAMP,
    Failure,
    arrow_schema,
    conform_batch,
    driver_error,
    null_cursor_counts,
    nullable_columns,
    quote,
)
from offload_pipeline.core.window import DAY, CursorValue, Window
from offload_pipeline.errors import OffloadError, SchemaMismatchError

log = logging.getLogger(__name__)

# rows per block the server sends; the core regroups blocks into commit-sized chunks
BLOCK_ROWS = 65_536

_WRAPPER = re.compile(r"^(Nullable|LowCardinality)\((.*)\)$")
_DECIMAL = re.compile(r"^Decimal(?:32|64|128)?\((\d+),\s*(\d+)\)$")
_DATETIME = re.compile(r"^DateTime(?:64\((\d)(?:,\s*'[^']*')?\)|\('[^']*'\))?$")
_CH_TYPES: dict[str, pa.DataType] = {
    **dict.fromkeys(("Int64", "UInt32", "UInt64"), pa.int64()),
    **dict.fromkeys(("Int32", "Int16", "Int8", "UInt16", "UInt8"), pa.int32()),
    **dict.fromkeys(("Float64", "Float32"), pa.float64()),
    "String": pa.string(),
    "Bool": pa.bool_(),
}
# ClickHouse error codes: TIMEOUT_EXCEEDED; and those meaning the server cannot serve us now
_TIMEOUT_CODES = {159}
_UNAVAILABLE_CODES = {
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    394,  # QUERY_WAS_CANCELLED (server shutting down)
}
_CODE = re.compile(r"Code: (\d+)\.")


def clickhouse_arrow_type(table: str, column: str, declared: str) -> pa.DataType:
    """Map a ClickHouse column type onto Arrow (``clickhouse_nullable`` says if it may be NULL).

    ``DateTime``/``DateTime64`` in any zone become µs UTC; ``LowCardinality(String)`` and
    ``FixedString`` become strings; ``Decimal(p, s)`` stays exact.
    """
    text, _nullable = _unwrap(declared)
    if match := _DECIMAL.match(text):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if _DATETIME.match(text):
        return TIMESTAMP
    if text.startswith(("FixedString(", "Enum8(", "Enum16(")):
        return pa.string()
    if text in _CH_TYPES:
        return _CH_TYPES[text]
    raise SchemaMismatchError(
        f"table '{table}': column '{column}': clickhouse type {declared!r} has no Iceberg mapping "
        "(use DateTime64, Decimal(p,s), Int*/UInt*, Float*, String, LowCardinality(String), Bool)"
    )


def clickhouse_nullable(declared: str) -> bool:
    """Whether a ClickHouse column type is ``Nullable`` (also inside ``LowCardinality``)."""
    return _unwrap(declared)[1]


def _unwrap(declared: str) -> tuple[str, bool]:
    """The type inside ``Nullable``/``LowCardinality`` wrappers, and whether one was Nullable."""
    text = declared.strip()
    nullable = False
    while match := _WRAPPER.match(text):
        nullable = nullable or match.group(1) == "Nullable"
        text = match.group(2).strip()
    return text, nullable


def ident(name: str) -> str:
    """Backtick-quote an identifier that config validation restricted to [A-Za-z0-9_]."""
    return quote(name, "`")


def micros_literal(micros: int) -> str:
    """An exact ``DateTime64(6, 'UTC')`` for µs since the epoch."""
    return f"fromUnixTimestamp64Micro(toInt64({int(micros)}), 'UTC')"


def _string(value: str) -> str:
    """A ClickHouse string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def schema_sql(database: str, table: str) -> str:
    """Columns of ``database.table`` with their declared types, in table order."""
    return (
        "SELECT name, type FROM system.columns "
        f"WHERE database = {_string(database)} AND table = {_string(table)} ORDER BY position"
    )


def max_event_time_sql(database: str, table: str, event_time: str) -> str:
    """The bound: largest event time in µs, NULL for an empty table."""
    return (
        f"SELECT if(count() = 0, NULL, toUnixTimestamp64Micro(toDateTime64(max({ident(event_time)})"
        f", 6, 'UTC'))) AS max_us FROM {ident(database)}.{ident(table)}"
    )


def count_between_sql(
    database: str, table: str, event_time: str, tie_breaker: str, lo_ts: int, hi: CursorValue
) -> str:
    """Rows with event time >= ``lo_ts`` and cursor <= ``hi``."""
    where = _between(event_time, tie_breaker, lo_ts, hi)
    return f"SELECT count() AS n FROM {ident(database)}.{ident(table)} WHERE {where}"


def count_by_day_sql(
    database: str, table: str, event_time: str, tie_breaker: str, lo_ts: int, hi: CursorValue
) -> str:
    """``count_between_sql`` per UTC day: (days after the midnight of ``lo_ts``, rows)."""
    micros = f"toUnixTimestamp64Micro(toDateTime64({ident(event_time)}, 6, 'UTC'))"
    where = _between(event_time, tie_breaker, lo_ts, hi)
    return (
        f"SELECT intDiv({micros} - {lo_ts // DAY * DAY}, {DAY}) AS day, count() AS n "
        f"FROM {ident(database)}.{ident(table)} WHERE {where} GROUP BY day"
    )


def _between(event_time: str, tie_breaker: str, lo_ts: int, hi: CursorValue) -> str:
    ts, seq = ident(event_time), ident(tie_breaker)
    return (
        f"{ts} >= {micros_literal(lo_ts)} "
        f"AND ({ts}, {seq}) <= ({micros_literal(hi.ts)}, {int(hi.seq)})"
    )


def null_count_sql(database: str, table: str, column: str) -> str:
    """Rows whose ``column`` is NULL (only a ``Nullable`` column can hold any)."""
    return (
        f"SELECT count() AS n FROM {ident(database)}.{ident(table)} WHERE isNull({ident(column)})"
    )


def read_sql(
    database: str,
    table: str,
    columns: list[str],
    event_time: str,
    tie_breaker: str,
    window: Window,
) -> str:
    """Rows of ``window`` in cursor order; ``columns`` are ``select_expression`` results."""
    ts, seq = ident(event_time), ident(tie_breaker)
    where = f"{ts} <= {micros_literal(window.hi_ts)}"
    if window.lo is not None:
        lo = f"({micros_literal(window.lo.ts)}, {int(window.lo.seq)})"
        where = f"({ts}, {seq}) > {lo} AND {where}"
    return (
        f"SELECT {', '.join(columns)} FROM {ident(database)}.{ident(table)} "
        f"WHERE {where} ORDER BY {ts}, {seq}"
    )


def keys_sql(
    database: str,
    table: str,
    columns: list[str],
    event_time: str,
    tie_breaker: str,
    upto: CursorValue,
) -> str:
    """``columns`` of every row with cursor <= ``upto``."""
    ts, seq = ident(event_time), ident(tie_breaker)
    return (
        f"SELECT {', '.join(columns)} FROM {ident(database)}.{ident(table)} "
        f"WHERE ({ts}, {seq}) <= ({micros_literal(upto.ts)}, {int(upto.seq)})"
    )


def select_expression(field: pa.Field, declared: str) -> str:
    """The expression delivering a column of ClickHouse type ``declared`` as ``field``'s type.

    Columns already in the target type are selected as they are, so filters and ``ORDER BY`` on
    them still use the table's sorting key.
    """
    column = ident(field.name)
    base, _nullable = _unwrap(declared)
    if field.type == TIMESTAMP and base != "DateTime64(6, 'UTC')":
        # other precision or zone: the same instant in µs, labelled UTC
        return f"toDateTime64({column}, 6, 'UTC') AS {column}"
    if pa.types.is_string(field.type) and base != "String":
        return f"toString({column}) AS {column}"  # FixedString, Enum
    return column


ClientFactory = Callable[[SourceSpec], Any]


def http_client(source: SourceSpec) -> Any:
    """A ``clickhouse-connect`` HTTP(S) client for ``source``."""
    import clickhouse_connect

    return clickhouse_connect.get_client(
        host=source.host,
        port=source.port,
        username=source.user,
        password=source.password,
        database=source.database,
        secure=source.secure,
        connect_timeout=source.connect_timeout_seconds,
        send_receive_timeout=source.statement_timeout_seconds + 30,
        query_retries=0,
        autogenerate_session_id=False,
    )


class ClickHouseHotTier:
    """A ClickHouse database holding bronze tables.

    ``client_factory`` builds the ``clickhouse-connect`` client (HTTP by default); anything with
    the same client interface works, e.g. the in-process engine
    (``clickhouse_connect.get_client(interface="chdb")``).
    """

    def __init__(self, source: SourceSpec, client_factory: ClientFactory = http_client) -> None:
        self.source = source
        self._client_factory = client_factory

    def location(self) -> str:
        s = self.source
        query = "?protocol=https" if s.secure else ""
        return f"clickhousedb://{s.user}@{s.host}:{s.port}/{s.database}{query}"

    def connected(self) -> AbstractContextManager[None]:
        """One connection per snapshot: only SQLite's schema parse made sharing pay."""
        return nullcontext()

    @contextmanager
    def snapshot(self, spec: TableSpec) -> Iterator[ClickHouseSnapshot]:
        try:
            client = self._client_factory(self.source)
        except Exception as e:
            raise driver_error(e, spec, self.location(), "connect") from None
        try:
            yield ClickHouseSnapshot(client, spec, self)
        finally:
            try:
                client.close()
            except Exception as e:  # noqa: BLE001 - nothing left to close
                log.debug("table %s: closing the hot-tier client: %s", spec.name, e)


class ClickHouseSnapshot:
    """Reads of one ClickHouse table: the bound first, then only rows at or below it."""

    def __init__(self, client: Any, spec: TableSpec, tier: ClickHouseHotTier) -> None:
        self._client = client
        self._spec = spec
        self._tier = tier
        self._db = tier.source.database
        self._schema: pa.Schema | None = None
        self._declared: dict[str, str] = {}
        self._nullable: frozenset[str] = frozenset()
        self._settings = {
            "max_execution_time": int(tier.source.statement_timeout_seconds),
            "max_block_size": BLOCK_ROWS,
            # the timeout counts from the start of the query, streaming included
            "timeout_overflow_mode": "throw",
        }

    def schema(self) -> pa.Schema:
        if self._schema is None:
            rows = self._rows(schema_sql(self._db, self._spec.source_table))
            self._declared = dict(rows)
            columns = [
                (name, declared, not clickhouse_nullable(declared)) for name, declared in rows
            ]
            self._nullable = nullable_columns(columns)
            self._schema = arrow_schema(
                self._spec,
                columns,
                clickhouse_arrow_type,
                qualified_name=f"{self._db}.{self._spec.source_table}",
                location=self._tier.location(),
            )
        return self._schema

    def max_event_time(self) -> int | None:
        sql = max_event_time_sql(self._db, self._spec.source_table, self._spec.cursor.event_time)
        value = self._rows(sql)[0][0]
        return None if value is None else int(value)

    def count_between(self, lo_ts: int, hi: CursorValue) -> int:
        c = self._spec.cursor
        sql = count_between_sql(
            self._db, self._spec.source_table, c.event_time, c.tie_breaker, lo_ts, hi
        )
        return int(self._rows(sql)[0][0])

    def count_by_day(self, lo_ts: int, hi: CursorValue) -> dict[int, int]:
        c = self._spec.cursor
        sql = count_by_day_sql(
            self._db, self._spec.source_table, c.event_time, c.tie_breaker, lo_ts, hi
        )
        base = lo_ts // DAY * DAY
        return {base + int(days) * DAY: int(n) for days, n in self._rows(sql)}

    def read(self, window: Window, batch_rows: int) -> Iterator[pa.RecordBatch]:
        c = self._spec.cursor
        schema = self.schema()
        exprs = [select_expression(f, self._declared[f.name]) for f in schema]
        sql = read_sql(
            self._db, self._spec.source_table, exprs, c.event_time, c.tie_breaker, window
        )
        yield from self._stream(sql, schema)

    def keys(self, columns: tuple[str, ...], upto: CursorValue) -> pa.Table:
        c = self._spec.cursor
        schema = pa.schema([self.schema().field(name) for name in columns])
        exprs = [select_expression(f, self._declared[f.name]) for f in schema]
        sql = keys_sql(self._db, self._spec.source_table, exprs, c.event_time, c.tie_breaker, upto)
        return pa.Table.from_batches(list(self._stream(sql, schema)), schema=schema)

    def null_cursor_rows(self) -> dict[str, int]:
        self.schema()  # learns which columns may hold NULL
        table = self._spec.source_table
        return null_cursor_counts(
            self._spec,
            self._nullable,
            lambda c: self._rows(null_count_sql(self._db, table, c))[0][0],
        )

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [
                tuple(row) for row in self._client.query(sql, settings=self._settings).result_rows
            ]
        except Exception as e:
            raise self._error(e) from e

    def _stream(self, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            with self._client.query_arrow_stream(sql, settings=self._settings) as stream:
                for batch in stream:
                    if batch.num_rows:
                        yield conform_batch(batch, schema, self._spec.name)
        except OffloadError:
            raise
        except Exception as e:
            raise self._error(e) from e

    def _error(self, e: BaseException) -> OffloadError:
        return driver_error(e, self._spec, self._tier.location(), _failure(e))


def _failure(e: BaseException) -> Failure:
    """What a client exception means, by ClickHouse error code (none for a transport error)."""
    match = _CODE.search(str(e))
    code = int(match.group(1)) if match else None
    if code in _TIMEOUT_CODES:
        return "timeout"
    if code in _UNAVAILABLE_CODES or (code is None and _is_connection_error(e)):
        return "lost"
    return "query"


def _is_connection_error(e: BaseException) -> bool:
    from clickhouse_connect.driver.exceptions import OperationalError

    return isinstance(e, OperationalError | OSError | ConnectionError)
