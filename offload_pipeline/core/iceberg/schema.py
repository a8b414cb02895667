"""Arrow ↔ Iceberg: column types, the layout of a new table, and additive schema evolution.

The hot tier's Arrow schema is the source of truth. A new hot-tier column is added to the Iceberg
table (optional: existing rows have no value); anything else (a changed type, a dropped column)
raises ``SchemaMismatchError`` naming the column before any write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import (
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    YearTransform,
)
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from offload_pipeline.config import TableSpec
from offload_pipeline.core.iceberg.state import SCHEMA_COMMIT, decode_state, encode_state
from offload_pipeline.errors import CommitConflictError, ConfigInvalidError, SchemaMismatchError

_TRANSFORMS: dict[str, Transform[Any, Any]] = {
    "identity": IdentityTransform(),
    "year": YearTransform(),
    "month": MonthTransform(),
    "day": DayTransform(),
    "hour": HourTransform(),
}


def arrow_to_iceberg_type(table: str, field: pa.Field) -> IcebergType:
    """The Iceberg type for an Arrow column: µs timestamps, decimals, 32/64-bit ints, strings."""
    t = field.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return TimestampType()
        if t.tz.upper() in ("UTC", "+00:00", "ETC/UTC"):
            return TimestamptzType()
    elif pa.types.is_decimal(t) and t.precision <= 38:
        return DecimalType(t.precision, t.scale)
    elif pa.types.is_int64(t) or pa.types.is_uint32(t):
        return LongType()
    elif pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return IntegerType()
    elif pa.types.is_floating(t):
        return DoubleType()
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        return StringType()
    elif pa.types.is_boolean(t):
        return BooleanType()
    raise SchemaMismatchError(
        f"table '{table}': column '{field.name}': Arrow type {t} has no Iceberg mapping"
    )


def iceberg_schema(spec: TableSpec, arrow_schema: pa.Schema) -> Schema:
    """An explicit Iceberg schema for the hot-tier columns (cursor and key columns required)."""
    fields = [
        NestedField(
            field_id=i,
            name=f.name,
            field_type=arrow_to_iceberg_type(spec.name, f),
            required=not f.nullable,
        )
        for i, f in enumerate(arrow_schema, start=1)
    ]
    return Schema(*fields)


@dataclass(frozen=True)
class TableLayout:
    """What a new Iceberg table is created with: schema, partitioning and sort order."""

    schema: Schema
    partition_spec: PartitionSpec
    sort_order: SortOrder


def table_layout(spec: TableSpec, arrow_schema: pa.Schema) -> TableLayout:
    """The layout of ``spec``'s Iceberg table for the hot-tier schema (whose columns the source
    already checked against the config)."""
    schema = iceberg_schema(spec, arrow_schema)
    names = {f.name: f.field_id for f in schema.fields}
    transform = _TRANSFORMS[spec.partition_transform]
    column_type = schema.find_type(names[spec.partition_column])
    if not transform.can_transform(column_type):
        # a table created with this spec could never take a row, and a corrected config would
        # not change the spec of a table that already exists: refuse before creating anything
        raise ConfigInvalidError(
            f"table '{spec.name}': partition: {spec.partition_transform}({spec.partition_column})"
            f" does not fit column '{spec.partition_column}' of type {column_type} in source "
            f"table '{spec.source_table}' (nothing was created)"
        )
    partition = PartitionSpec(
        PartitionField(
            source_id=names[spec.partition_column],
            field_id=1000,
            transform=transform,
            name=f"{spec.partition_column}_{spec.partition_transform}",
        )
    )
    sort = SortOrder(
        SortField(source_id=names[spec.cursor.event_time], transform=IdentityTransform()),
        SortField(source_id=names[spec.cursor.tie_breaker], transform=IdentityTransform()),
    )
    return TableLayout(schema, partition, sort)


@dataclass(frozen=True)
class SchemaChange:
    """A hot-tier column the Iceberg table does not have yet (the only change applied)."""

    column: str
    iceberg_type: IcebergType

    def __str__(self) -> str:
        return f"added column {self.column} {self.iceberg_type}"


def schema_changes(
    spec: TableSpec, table: Table, arrow_schema: pa.Schema
) -> tuple[SchemaChange, ...]:
    """The additive changes taking ``table`` to the hot-tier schema; anything else raises.

    Raises:
        SchemaMismatchError: a column changed type or left the hot tier; names the column.
    """
    current = {f.name: f for f in table.schema().fields}
    added = []
    for field in arrow_schema:
        wanted = arrow_to_iceberg_type(spec.name, field)
        have = current.pop(field.name, None)
        if have is None:
            added.append(SchemaChange(field.name, wanted))
        elif have.field_type != wanted:
            raise SchemaMismatchError(
                f"table '{spec.name}': column '{field.name}': hot tier has {wanted}, "
                f"{spec.iceberg_identifier} has {have.field_type} (type changes are not applied; "
                "nothing was written)"
            )
    if current:
        missing = next(iter(current))
        raise SchemaMismatchError(
            f"table '{spec.name}': column '{missing}' of {spec.iceberg_identifier} is missing "
            "from the hot tier (dropped columns are not applied; nothing was written)"
        )
    return tuple(added)


def evolve(spec: TableSpec, table: Table, changes: tuple[SchemaChange, ...]) -> None:
    """Add ``changes`` to ``table`` in one commit that also bumps the schema-change counter.

    Raises:
        CommitConflictError: another writer committed to the table meanwhile.
    """
    state = decode_state(table.properties)
    evolved = replace(state, schema_changes_total=state.schema_changes_total + len(changes))
    try:
        with table.transaction() as tx:
            with tx.update_schema() as update:
                for change in changes:
                    update.add_column(change.column, change.iceberg_type)
            tx.set_properties(encode_state(evolved, SCHEMA_COMMIT))
    except CommitFailedException as e:
        raise CommitConflictError(
            f"table '{spec.name}': another writer changed {spec.iceberg_identifier} while "
            f"its schema was evolving ({e})"
        ) from e


def write_schema(table: Table, schema: pa.Schema) -> pa.Schema:
    """``schema`` with the table's nullability, so required Iceberg columns accept the batch."""
    required = {f.name for f in table.schema().fields if f.required}
    return pa.schema([f.with_nullable(f.name not in required) for f in schema])
