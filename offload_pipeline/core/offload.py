"""One offload attempt of one table: plan a window, read it, write it, commit it.

Rows are committed in chunks of about ``batch_rows``, each Iceberg commit carrying the cursor of
its last row as the new watermark, so memory stays bounded on any backlog and a crash loses at most
the chunk in flight. A reader thread fetches the next chunk while the current one is written.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import pyarrow as pa

from offload_pipeline.config import RunSpec
from offload_pipeline.core import cancel
from offload_pipeline.core.chunking import chunks, last_cursor, read_ahead
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.handle import TableHandle
from offload_pipeline.core.iceberg.commit import begin_commit
from offload_pipeline.core.iceberg.state import (
    OFFLOAD_COMMIT,
    CommittedState,
    LookbackCount,
    decode_state,
    encode_state,
)
from offload_pipeline.core.sources import SourceSnapshot
from offload_pipeline.core.window import (
    MAX_SEQ,
    MICROS,
    CursorValue,
    Watermark,
    Window,
    checked_event_time,
    lag_seconds,
    plan_window,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OffloadResult:
    """What one attempt did; the Dagster layer turns it into materialization metadata."""

    table: str
    run_id: str
    rows: int
    commits: int
    window: Window | None
    previous_watermark: Watermark | None
    watermark: Watermark | None
    source_max_ts: int | None
    late_rows: int
    snapshot_id: int | None
    duration_seconds: float
    planned_at_us: int
    """the wall clock when the window was planned (µs), the ``now`` of the lag"""
    schema_changes: tuple[str, ...] = ()
    """additive changes applied to the Iceberg schema before this attempt's rows"""

    @property
    def lag_seconds(self) -> float | None:
        """Seconds the watermark trails the hot tier's newest row, a future one counting as
        the plan time (0 for an empty hot tier)."""
        watermark_ts = self.watermark.cursor.ts if self.watermark else None
        return lag_seconds(
            self.source_max_ts, watermark_ts, now_us=self.planned_at_us, empty_source=0.0
        )

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration_seconds if self.duration_seconds > 0 else 0.0


def offload(
    table: TableHandle,
    run: RunSpec,
    *,
    run_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> OffloadResult:
    """Offload the rows of ``table`` above its committed watermark, exactly once.

    Args:
        table: the table, its hot tier and its catalog.
        run: batch size (rows per Iceberg commit) and the writer lock.
        run_id: recorded with the watermark (the Dagster run id); random if omitted.
        clock: wall clock in seconds, for the settle delay.

    Raises:
        OffloadCancelledError: the process was asked to stop; the commits made before are kept.
        OffloadError: a subclass naming the contract error type.
    """
    started = time.monotonic()
    _use_jemalloc()
    run_id = run_id or uuid.uuid4().hex
    spec = table.spec
    cancel.check(spec.name)
    with table.writing(run) as (snap, iceberg, changes):
        for change in changes:
            log.warning("table %s: schema evolved: %s", spec.name, change)
        cancel.check(spec.name)
        state = decode_state(iceberg.properties)
        source_max = checked_event_time(snap.max_event_time(), spec.name, spec.cursor.event_time)
        planned_at = int(clock() * MICROS)
        window = plan_window(state.watermark, source_max, planned_at, spec.settle_delay_seconds)
        failpoint("plan")
        rows = commits = late = 0
        watermark = state.watermark
        if window is not None:
            late = _late_rows(snap, state)
            lookback_lo = window.hi_ts - int(spec.late_row_lookback_seconds * MICROS)
            # counted before reading: in this snapshot no row lies between the final watermark
            # and (hi, +inf), so this equals the count up to the final watermark
            lookback_count = snap.count_between(lookback_lo, CursorValue(window.hi_ts, MAX_SEQ))
            batches = snap.read(window, run.batch_rows)
            chunked = read_ahead(chunks(batches, run.batch_rows, spec.cursor))
            chunk = next(chunked, None)
            while chunk is not None:
                cancel.check(spec.name)  # between commits: the last one stays, whole
                pending = begin_commit(spec, iceberg, watermark, run_id)
                failpoint("append.during")
                pending.append(chunk)
                failpoint("append.after")
                watermark = Watermark(
                    last_cursor(chunk, spec.cursor), run_id, committed_at_ms=int(time.time() * 1000)
                )
                size = len(chunk)
                chunk = None  # written: let it go before the next one arrives
                following = next(chunked, None)
                final = following is None
                committed = replace(
                    state,
                    watermark=watermark,
                    rows_total=state.rows_total + rows + size,
                    # late rows and their lookback move only with the run's last commit, so a crash
                    # before it leaves them to be counted again by the next run, once
                    late_rows_total=state.late_rows_total + (late if final else 0),
                    lookback=LookbackCount(lookback_lo, watermark.cursor, lookback_count)
                    if final
                    else state.lookback,
                )
                iceberg = pending.commit(encode_state(committed, OFFLOAD_COMMIT))
                rows += size
                commits += 1
                log.info(
                    "table %s: committed %d rows up to %s (snapshot %s)",
                    spec.name,
                    size,
                    watermark.cursor,
                    iceberg.metadata.current_snapshot_id,
                )
                chunk = following
            if commits == 0:
                late = 0  # nothing committed: the same late rows are found again next run
        snapshot = iceberg.current_snapshot()
        return OffloadResult(
            table=spec.name,
            run_id=run_id,
            rows=rows,
            commits=commits,
            window=window,
            previous_watermark=state.watermark,
            watermark=watermark,
            source_max_ts=source_max,
            late_rows=late,
            snapshot_id=snapshot.snapshot_id if snapshot else None,
            duration_seconds=time.monotonic() - started,
            planned_at_us=planned_at,
            schema_changes=tuple(str(change) for change in changes),
        )


@functools.cache
def _use_jemalloc() -> None:
    """Arrow's jemalloc pool returns freed chunk memory sooner than mimalloc: measured on a
    10M-row backlog, peak RSS 448 MB instead of 486 MB and 20 % faster (benchmarks/README.md)."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow build without jemalloc keeps its default
        pass


def _late_rows(snap: SourceSnapshot, state: CommittedState) -> int:
    """Rows that appeared behind the watermark since the last commit (within the lookback)."""
    if state.lookback is None:
        return 0
    now = snap.count_between(state.lookback.lo_ts, state.lookback.hi)
    # rows deleted from the hot tier (retention) would make this negative
    return max(0, now - state.lookback.count)
