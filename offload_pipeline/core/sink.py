"""The Iceberg side: tables created from the hot-tier schema, and commits that carry the watermark.

The watermark is a set of table properties written in the *same* transaction as the rows, so a
commit either lands with its rows and its watermark or not at all. Tables refuse pyiceberg's silent
commit retry: a lost race must fail, never re-append on top of the winner.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
)
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThan
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

from offload_pipeline.config import CatalogSpec, TableSpec
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.window import CursorValue, Watermark, from_micros, iso
from offload_pipeline.errors import (
    CatalogUnavailableError,
    CommitConflictError,
    SchemaMismatchError,
    WriteFailedError,
)

# table property keys: the durable state of the offload, committed atomically with the rows
WATERMARK_TS = "offload.watermark.ts-us"
WATERMARK_SEQ = "offload.watermark.seq"
WATERMARK_ISO = "offload.watermark.iso"
WATERMARK_RUN_ID = "offload.watermark.run-id"
ROWS_TOTAL = "offload.rows-total"
LATE_ROWS_TOTAL = "offload.late-rows-total"
SCHEMA_CHANGES_TOTAL = "offload.schema-changes-total"
LATE_ROWS_REPAIRED_TOTAL = "offload.late-rows-repaired-total"
LOOKBACK_LO_TS = "offload.lookback.lo-ts-us"
LOOKBACK_HI_TS = "offload.lookback.hi-ts-us"
LOOKBACK_HI_SEQ = "offload.lookback.hi-seq"
LOOKBACK_COUNT = "offload.lookback.count"
# snapshot summary keys: what one commit did
SUMMARY_RUN_ID = "offload.run-id"
SUMMARY_ROWS = "offload.rows"
SUMMARY_BACKFILL = "offload.backfill"

TABLE_DEFAULTS = {
    # a concurrent commit must fail: pyiceberg would otherwise rebuild our append on top of the
    # winner's snapshot and land the same rows twice
    "commit.retry.num-retries": "0",
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
}

_TRANSFORMS: dict[str, Transform] = {
    "identity": IdentityTransform(),
    "year": YearTransform(),
    "month": MonthTransform(),
    "day": DayTransform(),
    "hour": HourTransform(),
}


@dataclass(frozen=True)
class LookbackCount:
    """Rows the hot tier held in ``[lo_ts, hi]`` when the watermark was last committed."""

    lo_ts: int
    hi: CursorValue
    count: int


@dataclass(frozen=True)
class TableState:
    """The offload state committed in an Iceberg table."""

    watermark: Watermark | None
    rows_total: int
    late_rows_total: int
    lookback: LookbackCount | None
    schema_changes_total: int = 0
    late_rows_repaired_total: int = 0
    """late rows that backfills have since added to Iceberg"""

    @property
    def late_rows_outstanding(self) -> int:
        """Late rows counted but not yet repaired by a backfill (never negative)."""
        return max(0, self.late_rows_total - self.late_rows_repaired_total)


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


class IcebergSink:
    """An Iceberg catalog, opened lazily from config properties."""

    def __init__(self, catalog: CatalogSpec) -> None:
        self.spec = catalog

    @cached_property
    def catalog(self) -> Catalog:
        # a few quick attempts: opening a new SQL catalog creates its tables, and two processes
        # doing that at once collide (the loser finds the tables already there on retry)
        for attempt in (1, 2):
            try:
                return load_catalog(self.spec.name, **self.spec.properties)
            except Exception:  # noqa: BLE001 - the last attempt below reports it
                time.sleep(0.2 * attempt)
        try:
            return load_catalog(self.spec.name, **self.spec.properties)
        except Exception as e:
            raise CatalogUnavailableError(
                f"catalog '{self.spec.name}' ({self.spec.properties.get('type')}): "
                f"cannot open: {_first_line(e)}"
            ) from e

    def load(self, spec: TableSpec) -> Table | None:
        """The table, or None when it was never created."""
        try:
            return self.catalog.load_table(spec.iceberg_identifier)
        except NoSuchTableError:
            return None
        except CatalogUnavailableError:
            raise
        except Exception as e:
            raise CatalogUnavailableError(
                f"table '{spec.name}': cannot load {spec.iceberg_identifier}: {e}"
            ) from e

    def ensure_table(self, spec: TableSpec, arrow_schema: pa.Schema) -> Table:
        """Load the table, creating namespace and table on first use; check the schema matches."""
        return self.prepare_table(spec, arrow_schema)[0]

    def prepare_table(
        self, spec: TableSpec, arrow_schema: pa.Schema
    ) -> tuple[Table, tuple[SchemaChange, ...]]:
        """Load or create the table and evolve it to take the hot-tier schema.

        New hot-tier columns are added to the Iceberg table (as optional columns: existing rows
        have no value) in one commit that also bumps the durable schema-change counter. Anything
        else (a changed type, a dropped column) raises ``SchemaMismatchError`` before any write.
        """
        table = self.load(spec)
        if table is None:
            return self._create(spec, arrow_schema), ()
        added = schema_changes(spec, table, arrow_schema)
        if not added:
            return table, ()
        total = read_state(table).schema_changes_total + len(added)
        try:
            with table.transaction() as tx:
                with tx.update_schema() as update:
                    for change in added:
                        update.add_column(change.column, change.iceberg_type)
                tx.set_properties({SCHEMA_CHANGES_TOTAL: str(total)})
        except CommitFailedException as e:
            raise CommitConflictError(
                f"table '{spec.name}': another writer changed {spec.iceberg_identifier} while "
                f"its schema was evolving ({e})"
            ) from e
        return self.catalog.load_table(spec.iceberg_identifier), added

    def _create(self, spec: TableSpec, arrow_schema: pa.Schema) -> Table:
        schema = iceberg_schema(spec, arrow_schema)
        names = {f.name: f.field_id for f in schema.fields}
        for column in (spec.partition_column, spec.cursor.event_time, spec.cursor.tie_breaker):
            if column not in names:
                raise SchemaMismatchError(
                    f"table '{spec.name}': column '{column}' named in the config is not in "
                    f"source table '{spec.source_table}' (columns: {', '.join(names)})"
                )
        for column in spec.primary_key:
            if column not in names:
                raise SchemaMismatchError(
                    f"table '{spec.name}': primary_key column '{column}' is not in "
                    f"source table '{spec.source_table}' (columns: {', '.join(names)})"
                )
        partition = PartitionSpec(
            PartitionField(
                source_id=names[spec.partition_column],
                field_id=1000,
                transform=_TRANSFORMS[spec.partition_transform],
                name=f"{spec.partition_column}_{spec.partition_transform}",
            )
        )
        sort = SortOrder(
            SortField(source_id=names[spec.cursor.event_time], transform=IdentityTransform()),
            SortField(source_id=names[spec.cursor.tie_breaker], transform=IdentityTransform()),
        )
        error: Exception | None = None
        for attempt in range(3):
            try:
                if not self.catalog.namespace_exists(spec.namespace):
                    self.catalog.create_namespace(spec.namespace)
                return self.catalog.create_table(
                    spec.iceberg_identifier,
                    schema=schema,
                    partition_spec=partition,
                    sort_order=sort,
                    properties={**TABLE_DEFAULTS, "offload.table": spec.name},
                )
            except Exception as e:  # noqa: BLE001 - decided below
                # another process may be creating the namespace or the table at the same moment
                # (catalogs report that race in different ways): theirs is as good as ours, and
                # a half-finished namespace is there on the next attempt
                error = e
                table = self.load(spec)
                if table is not None:
                    return table
                time.sleep(0.2 * (attempt + 1))
        raise CatalogUnavailableError(
            f"table '{spec.name}': cannot create {spec.iceberg_identifier}: {error}"
        ) from error

    def begin(
        self, spec: TableSpec, table: Table, planned_from: Watermark | None, run_id: str
    ) -> PendingCommit:
        """Start a commit on ``table``, the version the run planned from."""
        if read_state(table).watermark != planned_from:
            raise CommitConflictError(
                f"table '{spec.name}': the committed watermark moved since this run planned"
            )
        return PendingCommit(spec, table, run_id)

    def begin_replace(
        self, spec: TableSpec, table: Table, planned_from: Watermark | None, run_id: str, rng: Range
    ) -> PendingCommit:
        """Start a commit that first deletes every row of ``rng`` (same transaction)."""
        pending = self.begin(spec, table, planned_from, run_id)
        pending.delete(rng)
        return pending


@dataclass(frozen=True)
class Range:
    """Event times ``[start_ts, end_ts)`` of one table (µs), as an Iceberg row filter."""

    column: str
    start_ts: int
    end_ts: int

    def row_filter(self) -> BooleanExpression:
        return And(
            GreaterThanOrEqual(self.column, _timestamp_literal(self.start_ts)),
            LessThan(self.column, _timestamp_literal(self.end_ts)),
        )

    def __str__(self) -> str:
        return f"[{iso(self.start_ts)}, {iso(self.end_ts)})"


def _timestamp_literal(us: int) -> str:
    return from_micros(us).isoformat()


class PendingCommit:
    """Rows staged as data files, committed together with the new watermark properties.

    The transaction is built on the table version the run planned from, so the catalog rejects
    the commit if anything was committed since; that rejection surfaces as ``CommitConflictError``.
    """

    def __init__(self, spec: TableSpec, table: Table, run_id: str) -> None:
        self._spec = spec
        self._table = table
        self._tx = table.transaction()
        self._summary = {SUMMARY_RUN_ID: run_id}

    def delete(self, rng: Range) -> None:
        """Stage the deletion of every row in ``rng`` (whole files where partitions allow)."""
        self._summary[SUMMARY_BACKFILL] = str(rng)
        try:
            self._tx.delete(rng.row_filter(), snapshot_properties=dict(self._summary))
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': rewriting data files: {e}") from e

    def append(self, rows: pa.Table) -> None:
        """Write ``rows`` as data files (nothing is visible until ``commit``)."""
        rows = rows.cast(_arrow_target(self._table, rows.schema))
        summary = {**self._summary, SUMMARY_ROWS: str(len(rows))}
        try:
            self._tx.append(rows, snapshot_properties=summary)
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': writing data files: {e}") from e

    def commit(self, properties: Mapping[str, str]) -> Table:
        """Commit the staged rows and ``properties`` atomically; return the new table version."""
        self._tx.set_properties(dict(properties))
        failpoint("commit.before")
        try:
            committed = self._tx.commit_transaction()
        except CommitFailedException as e:
            raise CommitConflictError(
                f"table '{self._spec.name}': another writer committed to "
                f"{self._spec.iceberg_identifier} first; nothing of this attempt was "
                f"committed ({e})"
            ) from e
        except OSError as e:
            raise WriteFailedError(f"table '{self._spec.name}': writing table metadata: {e}") from e
        failpoint("commit.after")
        return committed


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


def read_state(table: Table) -> TableState:
    """The committed offload state, from the table's current properties."""
    props = table.properties
    watermark = None
    if WATERMARK_TS in props:
        watermark = Watermark(
            cursor=CursorValue(int(props[WATERMARK_TS]), int(props[WATERMARK_SEQ])),
            run_id=props.get(WATERMARK_RUN_ID, ""),
        )
    lookback = None
    if LOOKBACK_COUNT in props:
        lookback = LookbackCount(
            lo_ts=int(props[LOOKBACK_LO_TS]),
            hi=CursorValue(int(props[LOOKBACK_HI_TS]), int(props[LOOKBACK_HI_SEQ])),
            count=int(props[LOOKBACK_COUNT]),
        )
    return TableState(
        watermark=watermark,
        rows_total=int(props.get(ROWS_TOTAL, "0")),
        late_rows_total=int(props.get(LATE_ROWS_TOTAL, "0")),
        lookback=lookback,
        schema_changes_total=int(props.get(SCHEMA_CHANGES_TOTAL, "0")),
        late_rows_repaired_total=int(props.get(LATE_ROWS_REPAIRED_TOTAL, "0")),
    )


def state_properties(
    watermark: Watermark, rows_total: int, late_rows_total: int, lookback: LookbackCount | None
) -> dict[str, str]:
    """Table properties recording ``watermark`` and the counters (values are strings)."""
    props = {
        WATERMARK_TS: str(watermark.cursor.ts),
        WATERMARK_SEQ: str(watermark.cursor.seq),
        WATERMARK_ISO: iso(watermark.cursor.ts) or "",
        WATERMARK_RUN_ID: watermark.run_id,
        ROWS_TOTAL: str(rows_total),
        LATE_ROWS_TOTAL: str(late_rows_total),
    }
    if lookback is not None:
        props |= {
            LOOKBACK_LO_TS: str(lookback.lo_ts),
            LOOKBACK_HI_TS: str(lookback.hi.ts),
            LOOKBACK_HI_SEQ: str(lookback.hi.seq),
            LOOKBACK_COUNT: str(lookback.count),
        }
    return props


def _arrow_target(table: Table, schema: pa.Schema) -> pa.Schema:
    """``schema`` with the table's nullability, so required Iceberg columns accept the batch."""
    required = {f.name for f in table.schema().fields if f.required}
    return pa.schema([f.with_nullable(f.name not in required) for f in schema])


def _first_line(error: BaseException) -> str:
    """Driver errors carry whole SQL statements; the first line says what went wrong."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
