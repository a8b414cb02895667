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
from dataclasses import dataclass, replace

import pyarrow as pa

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core import cancel
from offload_pipeline.core.chunking import chunks
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.handle import TableHandle
from offload_pipeline.core.iceberg.commit import Range, begin_commit
from offload_pipeline.core.iceberg.state import BACKFILL_COMMIT, decode_state, encode_state
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


def backfill(
    table: TableHandle,
    run: RunSpec,
    start_ts: int,
    end_ts: int,
    *,
    run_id: str | None = None,
    up_to_watermark: bool = False,
) -> BackfillResult:
    """Replace the rows of ``table`` with event time in ``[start_ts, end_ts)`` (µs) atomically.

    Args:
        table: the table, its hot tier and its catalog.
        run: batch size (rows per data-file write) and the writer lock.
        start_ts: first event time of the range (µs, inclusive).
        end_ts: end of the range (µs, exclusive); at most the committed watermark.
        run_id: recorded in the snapshot summaries (the Dagster run id); random if omitted.
        up_to_watermark: end the range at the watermark instead of refusing a range reaching
            beyond it (a day range still open: the offload owns its rows after the watermark).

    Raises:
        BackfillRefusedError: an empty range, or one reaching beyond the committed watermark.
        OffloadCancelledError: the process was asked to stop (nothing is committed).
        OffloadError: a subclass naming the contract error type (nothing is committed).
    """
    started = time.monotonic()
    run_id = run_id or uuid.uuid4().hex
    spec = table.spec
    rng = Range(spec.cursor.event_time, start_ts, end_ts)
    if end_ts <= start_ts:
        raise BackfillRefusedError(f"table '{spec.name}': backfill range {rng} is empty")
    with table.writing(run) as (snap, iceberg, changes):
        state = decode_state(iceberg.properties)
        watermark = state.watermark
        if up_to_watermark and watermark is not None and watermark.cursor.ts < end_ts:
            end_ts = max(start_ts, watermark.cursor.ts)
            rng = Range(spec.cursor.event_time, start_ts, end_ts)
        if watermark is None or end_ts > watermark.cursor.ts:
            raise BackfillRefusedError(
                f"table '{spec.name}': backfill range {rng} reaches beyond the committed "
                f"watermark {iso(watermark.cursor.ts) if watermark else '(none yet)'}; rows "
                "after it belong to the scheduled offload: end the range at or before the "
                "watermark"
            )
        keys = list(spec.primary_key)
        cold_keys = iceberg.scan(
            row_filter=rng.row_filter(), selected_fields=tuple(keys)
        ).to_arrow()
        replaced = cold_keys.num_rows
        hot_keys: list[pa.Table] = []
        pending = None
        written = 0
        batches = snap.read(time_range(start_ts, end_ts), run.batch_rows)
        # one commit for the whole range: chunks only bound the memory of each data-file write
        for chunk in chunks(batches, run.batch_rows, spec.cursor):
            cancel.check(spec.name)
            if pending is None:
                pending = begin_commit(spec, iceberg, watermark, run_id, replacing=rng)
            pending.append(chunk)
            hot_keys.append(chunk.select(keys))
            written += len(chunk)
            failpoint("append.after")
        if pending is None and replaced:
            # the hot tier no longer holds the range (retention): leave Iceberg as it is
            log.warning("table %s: backfill %s: no hot-tier rows; nothing replaced", spec.name, rng)
        cancel.check(spec.name)
        if pending is not None:
            _refuse_dropping_rows(spec, rng, cold_keys, hot_keys)
            repaired = min(max(0, written - replaced), state.late_rows_outstanding)
            repaired_total = state.late_rows_repaired_total + repaired
            iceberg = pending.commit(
                encode_state(
                    replace(state, late_rows_repaired_total=repaired_total), BACKFILL_COMMIT
                )
            )
            log.info(
                "table %s: backfill %s replaced %d rows with %d", spec.name, rng, replaced, written
            )
        else:
            replaced = 0
        snapshot = iceberg.current_snapshot()
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
