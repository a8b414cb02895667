"""What every hot-tier backend shares: identifier quoting, the delivered Arrow types, the schema of
a source table, and turning a driver failure into a contract error without leaking the password.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import pyarrow as pa

from offload_pipeline.config import TableSpec
from offload_pipeline.errors import (
    OffloadError,
    OffloadTimeoutError,
    SchemaMismatchError,
    SourceQueryError,
    SourceUnavailableError,
    first_line,
    scrub,
)

TIMESTAMP = pa.timestamp("us", tz="UTC")

ArrowTypeOf = Callable[[str, str, str], pa.DataType]
"""(table, column, declared type) -> Arrow type; raises SchemaMismatchError when there is none."""

Failure = Literal["connect", "lost", "timeout", "query"]
"""What went wrong talking to a server: no connection, connection lost, statement timeout, the
query itself."""


def quote(identifier: str, mark: str = '"') -> str:
    """Quote an identifier that config validation already restricted to [A-Za-z0-9_].

    Args:
        identifier: a table or column name.
        mark: the quote character of the dialect (ClickHouse also takes a backtick).
    """
    return mark + identifier.replace(mark, mark * 2) + mark


def arrow_schema(
    spec: TableSpec,
    columns: Sequence[tuple[str, str, bool]],
    arrow_type: ArrowTypeOf,
    *,
    qualified_name: str,
    location: str,
) -> pa.Schema:
    """The Arrow schema rows of ``spec``'s source table are delivered in.

    The cursor and primary-key columns are required whatever the source declares, so the
    Iceberg table gets them as required fields.

    Args:
        spec: the table being read.
        columns: ``(name, declared type, not null)`` per column, in table order.
        arrow_type: the backend's type mapping.
        qualified_name: the source table as the backend names it, for the not-found error.
        location: the hot tier's URL, for the not-found error.

    Raises:
        SourceQueryError: ``columns`` is empty (the table does not exist).
        SchemaMismatchError: a column named in the config is not in the table, or a column
            type has no mapping.
    """
    if not columns:
        raise SourceQueryError(
            f"table '{spec.name}': source table '{qualified_name}' not found in {location}"
        )
    required = {spec.cursor.event_time, spec.cursor.tie_breaker, *spec.primary_key}
    schema = pa.schema(
        pa.field(
            name,
            arrow_type(spec.name, name, declared),
            nullable=not (notnull or name in required),
        )
        for name, declared, notnull in columns
    )
    check_configured_columns(spec, schema.names)
    return schema


def check_configured_columns(spec: TableSpec, names: Sequence[str]) -> None:
    """Refuse a config naming a column the source table lacks, before any SQL is built from it.

    SQLite reads an unknown double-quoted name as a string literal, so a misspelled cursor would
    otherwise compare text with timestamps instead of failing.

    Raises:
        SchemaMismatchError: names the table, the config field and the column.
    """
    configured = [
        ("cursor.event_time", spec.cursor.event_time),
        ("cursor.tie_breaker", spec.cursor.tie_breaker),
        *(("primary_key", column) for column in spec.primary_key),
        ("partition", spec.partition_column),
    ]
    for field_name, column in configured:
        if column not in names:
            raise SchemaMismatchError(
                f"table '{spec.name}': {field_name}: column '{column}' named in the config is not "
                f"in source table '{spec.source_table}' (columns: {', '.join(names)})"
            )


def nullable_columns(columns: Sequence[tuple[str, str, bool]]) -> frozenset[str]:
    """Names of the columns the source does not declare NOT NULL (``arrow_schema``'s input)."""
    return frozenset(name for name, _declared, notnull in columns if not notnull)


def null_count_sql(table: str) -> Callable[[str], str]:
    """The count of rows of ``table`` (quoted) whose column is NULL, per column name.

    The event time leads the cursor index, and SQLite and PostgreSQL indexes hold NULLs, so its
    ``IS NULL`` is an index seek.
    """
    return lambda column: f"SELECT count(*) FROM {table} WHERE {quote(column)} IS NULL"


def null_cursor_counts(
    spec: TableSpec, nullable: frozenset[str], count_null: Callable[[str], Any]
) -> dict[str, int]:
    """Rows with a NULL value per cursor column that has any.

    Only columns the source lets hold NULL are counted, so a NOT NULL cursor costs no query.

    Args:
        spec: the table being read.
        nullable: the columns the source does not declare NOT NULL.
        count_null: the backend's count of rows whose column is NULL.
    """
    cursor = (spec.cursor.event_time, spec.cursor.tie_breaker)
    counts = {column: int(count_null(column)) for column in cursor if column in nullable}
    return {column: n for column, n in counts.items() if n}


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, table: str) -> pa.RecordBatch:
    """Cast the driver's column types onto the declared schema (by position).

    Raises:
        SchemaMismatchError: a value does not fit its declared type; names table and column.
    """
    if batch.schema.equals(schema):
        return batch
    columns = []
    for field, column in zip(schema, batch.columns, strict=True):
        if isinstance(column.type, pa.BaseExtensionType):
            column = column.storage  # e.g. PostgreSQL numeric: an opaque type over its text
        try:
            columns.append(column if column.type == field.type else column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise SchemaMismatchError(
                f"table '{table}': column '{field.name}': values do not fit {field.type}: {e}"
            ) from e
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def driver_error(
    error: BaseException, spec: TableSpec, location: str, failure: Failure
) -> OffloadError:
    """The contract error for a server source's driver exception, the password scrubbed.

    Args:
        error: what the driver raised.
        spec: the table being read (its source's password is scrubbed, its timeout named).
        location: the hot tier's URL, without password.
        failure: what the backend made of the driver's error code.
    """
    source = spec.source
    where = f"table '{spec.name}': hot tier {location}"
    message = scrub(first_line(error), (source.password,))
    if failure == "connect":
        return SourceUnavailableError(f"{where}: cannot connect: {message}")
    if failure == "lost":
        return SourceUnavailableError(f"{where}: connection lost: {message}")
    if failure == "timeout":
        seconds = source.statement_timeout_seconds
        return OffloadTimeoutError(
            f"{where}: a query exceeded statement_timeout_seconds={seconds:g}: {message}"
        )
    return SourceQueryError(f"{where}: {message}")
