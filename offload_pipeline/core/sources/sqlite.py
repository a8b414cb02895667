"""The embedded SQLite hot tier: Arrow batches through ADBC, in one WAL read transaction.

Owns the SQLite type convention and the SELECT list that keeps ADBC, which types a column from
its first batch, delivering one type per column for the whole stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from offload_pipeline.config import SourceSpec, TableSpec
from offload_pipeline.core.sources._common import (
    TIMESTAMP,
    arrow_schema,
    conform_batch,
    null_count_sql,
    null_cursor_counts,
    nullable_columns,
    quote,
)
from offload_pipeline.core.window import DAY, CursorValue, Window
from offload_pipeline.errors import (
    OffloadError,
    SchemaMismatchError,
    SourceQueryError,
    SourceUnavailableError,
)

_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_SQLITE_TYPES: dict[str, pa.DataType] = {
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMPTZ", "DATETIME"), TIMESTAMP),
    **dict.fromkeys(("BIGINT", "INTEGER", "INT8", "INT64"), pa.int64()),
    **dict.fromkeys(("INT", "INT4", "INT32", "MEDIUMINT", "SMALLINT", "TINYINT"), pa.int32()),
    **dict.fromkeys(("REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT"), pa.float64()),
    **dict.fromkeys(("TEXT", "STRING", "CLOB"), pa.string()),
    **dict.fromkeys(("BOOLEAN", "BOOL"), pa.bool_()),
}


def sqlite_arrow_type(table: str, column: str, declared: str) -> pa.DataType:
    """Map a SQLite declared column type onto Arrow.

    SQLite stores no real timestamps or decimals, so the embedded hot tier fixes a convention:
    ``TIMESTAMP`` columns hold integer microseconds since the epoch (UTC) and
    ``DECIMAL(p, s)`` columns hold exact decimal text.
    """
    text = declared.strip().upper()
    if match := _DECIMAL.match(text):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if text.startswith(("VARCHAR", "CHAR", "NVARCHAR")):
        return pa.string()
    if text in _SQLITE_TYPES:
        return _SQLITE_TYPES[text]
    raise SchemaMismatchError(
        f"table '{table}': column '{column}': sqlite type {declared!r} has no Iceberg mapping "
        "(use TIMESTAMP, DECIMAL(p,s), BIGINT, INT, REAL, TEXT or BOOLEAN)"
    )


class SqliteHotTier:
    """The embedded hot tier: a SQLite database in WAL mode, read through ADBC.

    ADBC streams Arrow batches straight from sqlite3_step, several times faster than building
    Arrow arrays from Python tuples. WAL lets the demo feed keep writing while a run reads.
    """

    # rows per ADBC batch; the core regroups them into commit-sized chunks
    adbc_batch_rows = 65_536
    # how long a read waits for a writer's lock: a hot tier in DELETE-journal (not WAL) mode
    # blocks readers while a writer commits, and SQLite's default is to fail at once
    busy_timeout_ms = 30_000

    def __init__(self, source: SourceSpec) -> None:
        assert source.path is not None  # config validation requires it for kind sqlite
        self.path = source.path
        self._sharing = False
        self._shared: Any = None

    def location(self) -> str:
        return f"sqlite:///{self.path}"

    @contextmanager
    def connected(self) -> Iterator[None]:
        """Let the snapshots taken inside share one connection, each still its own read
        transaction: a new connection parses the whole database schema on its first statement,
        ~10 ms for a hot tier of 1,000 tables."""
        self._sharing = True
        try:
            yield
        finally:
            self._sharing = False
            conn, self._shared = self._shared, None
            if conn is not None:
                conn.close()

    @contextmanager
    def snapshot(self, spec: TableSpec) -> Iterator[SqliteSnapshot]:
        conn = self._shared or self._connect(spec)
        if self._sharing:
            self._shared = conn
        try:
            snapshot = SqliteSnapshot(conn, spec, self)
            snapshot.set_busy_timeout(self.busy_timeout_ms)
            # the dbapi connection is not autocommit: every statement until rollback() runs in
            # one read transaction, i.e. one WAL snapshot
            yield snapshot
        finally:
            try:
                conn.rollback()
            finally:
                if conn is not self._shared:
                    conn.close()

    def _connect(self, spec: TableSpec) -> Any:
        import adbc_driver_sqlite.dbapi as adbc

        if not self.path.exists():
            raise SourceUnavailableError(
                f"table '{spec.name}': hot tier {self.location()} does not exist"
            )
        try:
            return adbc.connect(f"file:{self.path}?mode=ro")
        except adbc.Error as e:
            raise SourceUnavailableError(
                f"table '{spec.name}': cannot open hot tier {self.location()}: {e}"
            ) from e


class SqliteSnapshot:
    """A read transaction on one SQLite table."""

    def __init__(self, conn: Any, spec: TableSpec, tier: SqliteHotTier) -> None:
        self._conn = conn
        self._spec = spec
        self._tier = tier
        self._table = quote(spec.source_table)
        self._schema: pa.Schema | None = None
        self._nullable: frozenset[str] = frozenset()

    def set_busy_timeout(self, milliseconds: int) -> None:
        self._query(f"PRAGMA busy_timeout = {int(milliseconds)}")

    @cached_property
    def _ts(self) -> str:
        # SQLite reads an unknown double-quoted name as a string literal: the columns are
        # checked against the config (by ``schema``) before any statement uses them
        self.schema()
        return quote(self._spec.cursor.event_time)

    @cached_property
    def _seq(self) -> str:
        self.schema()
        return quote(self._spec.cursor.tie_breaker)

    def schema(self) -> pa.Schema:
        if self._schema is None:
            rows = self._query(f"PRAGMA table_info({self._table})")
            columns = [
                (name, declared, bool(notnull)) for _cid, name, declared, notnull, *_ in rows
            ]
            self._nullable = nullable_columns(columns)
            self._schema = arrow_schema(
                self._spec,
                columns,
                sqlite_arrow_type,
                qualified_name=self._spec.source_table,
                location=self._tier.location(),
            )
        return self._schema

    def max_event_time(self) -> int | None:
        (value,) = self._query(f"SELECT max({self._ts}) FROM {self._table}")[0]
        return None if value is None else int(value)

    def count_between(self, lo_ts: int, hi: CursorValue) -> int:
        sql = (
            f"SELECT count(*) FROM {self._table} "
            f"WHERE {self._ts} >= ? AND ({self._ts}, {self._seq}) <= (?, ?)"
        )
        return int(self._query(sql, (lo_ts, hi.ts, hi.seq))[0][0])

    def count_by_day(self, lo_ts: int, hi: CursorValue) -> dict[int, int]:
        # one count per day over the cursor index, not GROUP BY: SQLite groups an expression
        # through a temporary B-tree, five times slower than counting index ranges
        sql = (
            f"WITH RECURSIVE day(lo) AS (SELECT ? UNION ALL SELECT lo + {DAY} FROM day "
            "WHERE lo + ? <= ?) "
            f"SELECT lo, (SELECT count(*) FROM {self._table} WHERE {self._ts} >= max(lo, ?) "
            f"AND {self._ts} < lo + {DAY} AND ({self._ts}, {self._seq}) <= (?, ?)) FROM day"
        )
        rows = self._query(sql, (lo_ts // DAY * DAY, DAY, hi.ts, lo_ts, hi.ts, hi.seq))
        return {int(lo): int(n) for lo, n in rows if n}

    def read(self, window: Window, batch_rows: int) -> Iterator[pa.RecordBatch]:
        columns = _select_list(self.schema())
        where = f"{self._ts} <= ?"
        params: tuple[int, ...] = (window.hi_ts,)
        if window.lo is not None:
            # a row value comparison lets SQLite seek the (ts, seq) index to the watermark
            where = f"({self._ts}, {self._seq}) > (?, ?) AND " + where
            params = (window.lo.ts, window.lo.seq, *params)
        sql = f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY {self._ts}, {self._seq}"
        yield from self._stream(sql, params, batch_rows=batch_rows)

    def keys(self, columns: tuple[str, ...], upto: CursorValue) -> pa.Table:
        schema = pa.schema([self.schema().field(c) for c in columns])
        where = f"({self._ts}, {self._seq}) <= (?, ?)"
        sql = f"SELECT {_select_list(schema)} FROM {self._table} WHERE {where}"
        batches = list(self._stream(sql, (upto.ts, upto.seq), schema))
        return pa.Table.from_batches(batches, schema=schema)

    def null_cursor_rows(self) -> dict[str, int]:
        self.schema()  # learns which columns may hold NULL
        sql = null_count_sql(self._table)
        return null_cursor_counts(self._spec, self._nullable, lambda c: self._query(sql(c))[0][0])

    def _stream(
        self,
        sql: str,
        params: tuple[int, ...],
        schema: pa.Schema | None = None,
        batch_rows: int = SqliteHotTier.adbc_batch_rows,
    ) -> Iterator[pa.RecordBatch]:
        schema = schema or self.schema()
        cursor = self._conn.cursor()
        try:
            cursor.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": str(min(batch_rows, self._tier.adbc_batch_rows))}
            )
            cursor.execute(sql, params)
            reader = cursor.fetch_record_batch()
            for batch in reader:
                yield conform_batch(_restore_nulls(batch, schema), schema, self._spec.name)
        except OffloadError:
            raise
        except Exception as e:
            raise _query_error(self._spec, e, "reading the hot tier: ") from e
        finally:
            cursor.close()

    def _query(self, sql: str, params: tuple[int, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
        except Exception as e:
            raise _query_error(self._spec, e) from e
        finally:
            cursor.close()


def _query_error(spec: TableSpec, error: Exception, doing: str = "") -> OffloadError:
    """A failed statement, typed: a lock still held after the busy timeout is the hot tier being
    unavailable for now (retried), anything else a query the hot tier refuses."""
    if "database is locked" in str(error):
        return SourceUnavailableError(
            f"table '{spec.name}': {doing}hot tier {spec.source.path} still locked by a writer "
            f"after {SqliteHotTier.busy_timeout_ms // 1000} s: {error}"
        )
    return SourceQueryError(f"table '{spec.name}': {doing}{error}")


def _select_list(schema: pa.Schema) -> str:
    """The SELECT list delivering every field of ``schema`` in one type for the whole stream.

    ADBC types each column from the values of the first batch. A ``DECIMAL(p, s)`` column has
    NUMERIC affinity: SQLite stores its values as INTEGER or REAL (exact to 15 significant
    digits), so they are read as REAL and rounded to scale ``s`` by Arrow; text that is not a
    number stays text and fails the read loudly instead of becoming 0. A nullable text or real
    column whose first batch is all NULL would be typed as integers and break on the first real
    value, so it is read with NULL replaced by a typed zero plus an ``IS NULL`` flag column.
    """
    expressions = []
    for field in schema:
        column = quote(field.name)
        value = column
        if pa.types.is_decimal(field.type):
            value = (
                f"CASE typeof({column}) WHEN 'text' THEN {column} ELSE CAST({column} AS REAL) END"
            )
        zero = _typed_zero(field)
        if zero is None:
            expressions.append(value)
        else:
            expressions.append(f"ifnull({value}, {zero})")
            expressions.append(f"{column} IS NULL")
    return ", ".join(expressions)


def _typed_zero(field: pa.Field) -> str | None:
    """The non-NULL stand-in of a nullable column ADBC could mistype, None if it cannot."""
    if not field.nullable:
        return None
    if pa.types.is_string(field.type):
        return "''"
    if pa.types.is_floating(field.type) or pa.types.is_decimal(field.type):
        return "0.0"
    return None


def _restore_nulls(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Put back the NULLs of the columns ``_select_list`` read with a flag column."""
    if batch.num_columns == len(schema):
        return batch
    columns = []
    position = 0
    for field in schema:
        column = batch.column(position)
        position += 1
        if _typed_zero(field) is not None:
            is_null = batch.column(position).cast(pa.bool_())
            position += 1
            column = pc.if_else(is_null, pa.scalar(None, column.type), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=schema.names)
