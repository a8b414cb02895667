"""Backfill: re-offload a closed time range and replace it in Iceberg in one commit.

The incremental offload never looks behind its watermark, so rows that arrive late, or a range
damaged by hand, need a repair. A backfill reads ``[start, end)`` from the hot tier and, in one
Iceberg transaction, deletes that range and appends what it read: running it twice changes
nothing, and late rows, gaps and duplicates in the range are all repaired. It takes the same
per-table writer lock as the offload, leaves the watermark where it is, and refuses a range that
reaches beyond the watermark (those rows belong to the next incremental run).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from offload_pipeline.config import TableSpec
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.lock import table_lock
from offload_pipeline.core.sink import (
    LATE_ROWS_REPAIRED_TOTAL,
    IcebergSink,
    Range,
    read_state,
)
from offload_pipeline.core.sources import HotTier
from offload_pipeline.core.window import iso, time_range
from offload_pipeline.errors import BackfillRefusedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillResult:
    """What one backfill did."""

    table: str
    run_id: str
    range: Range
    rows_written: int
    """hot-tier rows of the range, now in Iceberg"""
    rows_replaced: int
    """Iceberg rows of the range before the backfill (deleted in the same commit)"""
    snapshot_id: int | None
    duration_seconds: float
    schema_changes: tuple[str, ...] = ()

    @property
    def rows_added(self) -> int:
        """Net rows the backfill added: late rows or gaps repaired (negative: duplicates)."""
        return self.rows_written - self.rows_replaced


def backfill_range(
    spec: TableSpec,
    source: HotTier,
    sink: IcebergSink,
    start_ts: int,
    end_ts: int,
    *,
    run_id: str | None = None,
    batch_rows: int = 250_000,
    lock_dir: Path | None = None,
    lock_timeout_s: float = 300.0,
) -> BackfillResult:
    """Replace the rows of ``spec`` with event time in ``[start_ts, end_ts)`` (µs) atomically.

    Raises:
        BackfillRefusedError: an empty range, or one reaching beyond the committed watermark.
        OffloadError: a subclass naming the contract error type (nothing is committed).
    """
    started = time.monotonic()
    run_id = run_id or uuid.uuid4().hex
    rng = Range(spec.cursor.event_time, start_ts, end_ts)
    if end_ts <= start_ts:
        raise BackfillRefusedError(f"table '{spec.name}': backfill range {rng} is empty")
    lock = table_lock(lock_dir, spec.name, lock_timeout_s) if lock_dir else nullcontext()
    with lock, source.snapshot(spec) as snap:
        table, changes = sink.prepare_table(spec, snap.schema())
        state = read_state(table)
        watermark = state.watermark
        if watermark is None or end_ts > watermark.cursor.ts:
            raise BackfillRefusedError(
                f"table '{spec.name}': backfill range {rng} reaches beyond the committed "
                f"watermark {iso(watermark.cursor.ts) if watermark else '(none yet)'}; rows "
                "after it belong to the scheduled offload: end the range at or before the "
                "watermark"
            )
        keys = list(spec.primary_key)
        cold_keys = table.scan(row_filter=rng.row_filter(), selected_fields=tuple(keys)).to_arrow()
        replaced = cold_keys.num_rows
        hot_keys: list[pa.Table] = []
        pending = None
        written = 0
        for chunk in _regroup(snap.read(time_range(start_ts, end_ts), batch_rows), batch_rows):
            if pending is None:
                pending = sink.begin_replace(spec, table, watermark, run_id, rng)
            pending.append(chunk)
            hot_keys.append(chunk.select(keys))
            written += len(chunk)
            failpoint("append.after")
        if pending is None and replaced:
            # the hot tier no longer holds the range (retention): leave Iceberg as it is
            log.warning("table %s: backfill %s: no hot-tier rows; nothing replaced", spec.name, rng)
        if pending is not None:
            _refuse_dropping_rows(spec, rng, cold_keys, hot_keys)
            repaired = min(max(0, written - replaced), state.late_rows_outstanding)
            table = pending.commit(
                {LATE_ROWS_REPAIRED_TOTAL: str(state.late_rows_repaired_total + repaired)}
            )
            log.info(
                "table %s: backfill %s replaced %d rows with %d", spec.name, rng, replaced, written
            )
        else:
            replaced = 0
        snapshot = table.current_snapshot()
        return BackfillResult(
            table=spec.name,
            run_id=run_id,
            range=rng,
            rows_written=written,
            rows_replaced=replaced,
            snapshot_id=snapshot.snapshot_id if snapshot else None,
            duration_seconds=time.monotonic() - started,
            schema_changes=tuple(str(change) for change in changes),
        )


def _refuse_dropping_rows(
    spec: TableSpec, rng: Range, cold_keys: pa.Table, hot_keys: list[pa.Table]
) -> None:
    """Refuse a replacement that would delete keys the hot tier no longer holds (retention
    already removed part of the range): the cold tier may be their only copy."""
    if cold_keys.num_rows == 0:
        return
    hot = pa.concat_tables(hot_keys).cast(cold_keys.schema)
    gone = cold_keys.group_by(cold_keys.column_names).aggregate([])
    gone = gone.join(hot, keys=cold_keys.column_names, join_type="left anti")
    if gone.num_rows:
        raise BackfillRefusedError(
            f"table '{spec.name}': backfill {rng} would drop {gone.num_rows} row(s) that the hot "
            f"tier no longer holds (e.g. {gone.slice(0, 1).to_pylist()[0]}); its retention has "
            "passed part of the range: backfill a range the hot tier still covers"
        )


def _regroup(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Batches regrouped into tables of about ``rows`` rows (one data-file write each)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)
