"""Reconciliation: the hot tier against the Iceberg table.

``reconcile`` compares every key up to the watermark (``offload-pipeline verify``: thorough, a
full scan of both sides); ``check_closed_windows`` compares recent days by count and the most
recent window by key (the asset check after every run: cheap enough to run every cycle).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform

from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.handle import TableHandle
from offload_pipeline.core.iceberg.commit import Range
from offload_pipeline.core.iceberg.state import decode_state
from offload_pipeline.core.window import (
    DAY,
    HOUR,
    MAX_SEQ,
    MICROS,
    CursorValue,
    from_micros,
    time_range,
)


@dataclass(frozen=True)
class Reconciliation:
    """Key-level comparison of one table; ``ok`` when Iceberg holds each row exactly once."""

    table: str
    watermark: CursorValue | None
    hot_rows: int
    iceberg_rows: int
    missing_keys: int
    """keys in the hot tier (cursor <= watermark) absent from Iceberg"""
    duplicate_rows: int
    """Iceberg rows beyond the first of each key"""
    unexpected_keys: int
    """keys in Iceberg that the hot tier does not hold (up to the watermark)"""
    missing_sample: tuple[tuple[object, ...], ...] = ()
    null_cursor_rows: int = 0
    """hot-tier rows with a NULL cursor column: outside every window, never offloaded"""

    @property
    def ok(self) -> bool:
        return not (
            self.missing_keys
            or self.duplicate_rows
            or self.unexpected_keys
            or self.null_cursor_rows
        )


def reconcile(table: TableHandle) -> Reconciliation:
    """Compare keys of rows with cursor <= the committed watermark on both sides."""
    spec = table.spec
    keys = spec.primary_key
    cold = table.catalog.load(spec)
    watermark = decode_state(cold.properties).watermark if cold is not None else None
    with table.source.snapshot(spec) as snap:
        if watermark is None:
            hot = pa.table({k: pa.array([], snap.schema().field(k).type) for k in keys})
        else:
            hot = snap.keys(keys, watermark.cursor)
        nulls = sum(snap.null_cursor_rows().values())
    if cold is None:
        iceberg = hot.slice(0, 0)
    else:
        iceberg = cold.scan(selected_fields=keys).to_arrow().select(list(keys))
        iceberg = iceberg.cast(hot.schema)
    distinct = iceberg.group_by(list(keys)).aggregate([])
    missing = hot.join(distinct, keys=list(keys), join_type="left anti")
    unexpected = distinct.join(hot, keys=list(keys), join_type="left anti")
    sample = missing.slice(0, 5).to_pylist()
    return Reconciliation(
        table=spec.name,
        watermark=watermark.cursor if watermark else None,
        hot_rows=hot.num_rows,
        iceberg_rows=iceberg.num_rows,
        missing_keys=missing.num_rows,
        duplicate_rows=iceberg.num_rows - distinct.num_rows,
        unexpected_keys=unexpected.num_rows,
        missing_sample=tuple(tuple(row.values()) for row in sample),
        null_cursor_rows=nulls,
    )


Severity = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class DayCount:
    """Rows of one UTC day (up to the watermark) on each side."""

    day: str
    hot_rows: int
    iceberg_rows: int

    @property
    def delta_rows(self) -> int:
        return self.hot_rows - self.iceberg_rows


@dataclass(frozen=True)
class ClosedWindowCheck:
    """The hot tier against Iceberg over closed windows: per-day counts for the last days, and
    keys for the most recent window (the late-row lookback before the watermark).

    A window is closed once the watermark has passed it, so every row in it should be in Iceberg.
    Missing rows no more than the late rows counted and not yet backfilled are late arrivals
    (``warn``: a backfill repairs them); duplicates, unexpected keys, and missing rows beyond
    that are ``error``.
    """

    table: str
    watermark: CursorValue | None
    days: tuple[DayCount, ...]
    recent: str | None
    """the key-checked window, ``[start, end)``"""
    missing_keys: int
    duplicate_rows: int
    unexpected_keys: int
    late_rows_outstanding: int
    null_cursor_rows: int = 0
    """hot-tier rows with a NULL cursor column: in no window, so never offloaded"""

    @property
    def delta_rows(self) -> int:
        """Hot-tier rows minus Iceberg rows over the checked days (0 when equal)."""
        return sum(day.delta_rows for day in self.days)

    @property
    def missing_rows(self) -> int:
        return max(self.missing_keys, sum(max(0, day.delta_rows) for day in self.days))

    @property
    def severity(self) -> Severity:
        surplus = any(day.delta_rows < 0 for day in self.days)
        if self.duplicate_rows or self.unexpected_keys or surplus or self.null_cursor_rows:
            return "error"
        if self.missing_rows > self.late_rows_outstanding:
            return "error"
        return "warn" if self.missing_rows else "ok"


def check_closed_windows(table: TableHandle, days: int) -> ClosedWindowCheck:
    """Compare the last ``days`` UTC days (each cut at the watermark) and the recent window."""
    spec = table.spec
    failpoint("reconcile.check")
    iceberg = table.catalog.load(spec)
    state = decode_state(iceberg.properties) if iceberg is not None else None
    if iceberg is None or state is None or state.watermark is None:
        with table.source.snapshot(spec) as snap:
            nulls = sum(snap.null_cursor_rows().values())
        return ClosedWindowCheck(spec.name, None, (), None, 0, 0, 0, 0, null_cursor_rows=nulls)
    end = state.watermark.cursor.ts  # every row before it is committed (ties at it may not be)
    first = (end // DAY - (days - 1)) * DAY
    recent = Range(
        spec.cursor.event_time, max(first, end - int(spec.late_row_lookback_seconds * MICROS)), end
    )
    keys = list(spec.primary_key)
    with table.source.snapshot(spec) as snap:
        counted = snap.count_by_day(first, CursorValue(end - 1, MAX_SEQ))
        hot_days = {lo: counted.get(lo, 0) for lo in range(first, end, DAY)}
        hot_keys = pa.Table.from_batches(
            [b.select(keys) for b in snap.read(time_range(recent.start_ts, recent.end_ts), 65_536)],
            schema=pa.schema([snap.schema().field(k) for k in keys]),
        )
        nulls = sum(snap.null_cursor_rows().values())
    cold_days = iceberg_day_counts(iceberg, spec.cursor.event_time, first, end)
    cold_keys = (
        iceberg.scan(row_filter=recent.row_filter(), selected_fields=tuple(keys))
        .to_arrow()
        .select(keys)
        .cast(hot_keys.schema)
    )
    distinct = cold_keys.group_by(keys).aggregate([])
    return ClosedWindowCheck(
        table=spec.name,
        watermark=state.watermark.cursor,
        days=tuple(
            DayCount(from_micros(lo).date().isoformat(), hot, cold_days.get(lo, 0))
            for lo, hot in hot_days.items()
        ),
        recent=str(recent),
        missing_keys=hot_keys.join(distinct, keys=keys, join_type="left anti").num_rows,
        duplicate_rows=cold_keys.num_rows - distinct.num_rows,
        unexpected_keys=distinct.join(hot_keys, keys=keys, join_type="left anti").num_rows,
        late_rows_outstanding=state.late_rows_outstanding,
        null_cursor_rows=nulls,
    )


def iceberg_day_counts(iceberg: Table, column: str, first: int, end: int) -> dict[int, int]:
    """Rows per UTC day (keyed by its first µs) with ``column`` in ``[first, end)``, ``first`` a
    UTC midnight.

    Reads as little as the partitioning allows. A data file of a ``day(column)`` or
    ``hour(column)`` partition that lies wholly inside the range and has no delete files is
    counted by the ``record_count`` of its manifest entry, without reading it; for an hourly table
    the hours of a day are summed. Only the files of the partition ``end`` cuts (the watermark's
    day or hour), files with delete files and files of any other partitioning (``month``,
    ``year``, ``identity``: partitions that do not nest in days) are read, with the range as row
    filter and only ``column``: at worst a bounded read of the compared days.
    """
    scan = iceberg.scan(
        row_filter=Range(column, first, end).row_filter(), selected_fields=(column,)
    )
    units = _partition_units(iceberg, column)
    counts: Counter[int] = Counter()
    to_read = []
    for task in scan.plan_files():
        unit = units.get(task.file.spec_id)
        start = None if unit is None else task.file.partition[unit.position]
        if unit is None or start is None or task.delete_files:
            to_read.append(task)
            continue
        lo = start * unit.micros
        if first <= lo and lo + unit.micros <= end:
            counts[lo // DAY * DAY] += task.file.record_count
        else:
            to_read.append(task)
    if to_read:
        reader = ArrowScan(iceberg.metadata, iceberg.io, scan.projection(), scan.row_filter)
        for batch in reader.to_record_batches(to_read):
            # every value is at or after `first`, a midnight: truncating division is exact
            offsets = pc.subtract(batch.column(0).cast(pa.int64()), first)
            for row in pc.value_counts(pc.divide(offsets, DAY)).to_pylist():
                counts[first + int(row["values"]) * DAY] += int(row["counts"])
    return dict(counts)


@dataclass(frozen=True)
class _Unit:
    """The partition field of a spec that nests in days: its position and width in µs."""

    position: int
    micros: int


def _partition_units(iceberg: Table, column: str) -> dict[int, _Unit]:
    """Per partition spec id, its ``day``/``hour`` field on ``column``; specs without one are
    left out (their files are read)."""
    source_id = iceberg.schema().find_field(column).field_id
    units = {}
    for spec_id, spec in iceberg.specs().items():
        for position, field in enumerate(spec.fields):
            if field.source_id == source_id and isinstance(field.transform, DayTransform):
                units[spec_id] = _Unit(position, DAY)
            elif field.source_id == source_id and isinstance(field.transform, HourTransform):
                units[spec_id] = _Unit(position, HOUR)
    return units
