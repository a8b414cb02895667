"""Where each table stands: source, target, committed watermark, lag and row counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from offload_pipeline.config import SourceSpec, redact
from offload_pipeline.core.handle import TableHandle
from offload_pipeline.core.iceberg.state import CommittedState, decode_state, is_offload_commit
from offload_pipeline.core.maintenance import live_data_files, small_file_ratio
from offload_pipeline.core.sources import HotTier
from offload_pipeline.core.window import checked_event_time, iso, lag_seconds
from offload_pipeline.errors import OffloadError


@dataclass(frozen=True)
class Observation:
    """One look at a table: what its Iceberg table holds and the hot tier's newest event time.

    Parts that could not be read stay None and their errors are kept: ``status`` reports them,
    the metrics sensor logs them; neither fails.
    """

    observed_at_us: int
    """the wall clock of the look (µs): the ``now`` of the lag"""
    state: CommittedState | None = None
    """committed offload state; None when the Iceberg table does not exist (or was unreadable)"""
    iceberg_unreadable: bool = False
    """the catalog or the table could not be read (unlike a table that does not exist yet)"""
    snapshot: Snapshot | None = None
    snapshots: int = 0
    watermark_advanced_ms: int | None = None
    """commit time of the newest offload snapshot still in the table's metadata"""
    source_max_ts: int | None = None
    errors: tuple[OffloadError, ...] = ()
    small_file_ratio: float | None = None
    """measured only when ``observe`` is given a small-file size"""

    @property
    def iceberg_rows(self) -> int | None:
        if self.state is None:
            return None
        return int(self._summary.get("total-records", 0))

    @property
    def data_files(self) -> int | None:
        if self.state is None:
            return None
        return int(self._summary.get("total-data-files", 0))

    @property
    def watermark_ts(self) -> int | None:
        watermark = self.state.watermark if self.state else None
        return watermark.cursor.ts if watermark else None

    @property
    def lag_seconds(self) -> float | None:
        """Seconds the watermark trails the hot tier at the time of the look; None before the
        first commit or for an empty hot tier."""
        return lag_seconds(self.source_max_ts, self.watermark_ts, now_us=self.observed_at_us)

    @property
    def _summary(self) -> dict[str, str]:
        summary = self.snapshot.summary if self.snapshot else None
        return summary.additional_properties if summary else {}


def observe(table: TableHandle, now_us: int, small_file_bytes: int | None = None) -> Observation:
    """Read ``table``'s committed state from Iceberg and its newest event time from the hot tier
    at wall-clock ``now_us`` (and, given ``small_file_bytes``, the share of small files, which
    reads the manifests; everything else comes from the table metadata alone)."""
    spec = table.spec
    values: dict[str, Any] = {}
    errors: list[OffloadError] = []
    try:
        iceberg = table.catalog.load(spec)
        if iceberg is not None:
            snapshots = iceberg.snapshots()
            state = decode_state(iceberg.properties)
            values |= {
                "state": state,
                "snapshot": iceberg.current_snapshot(),
                "snapshots": len(snapshots),
                "watermark_advanced_ms": _watermark_advanced_ms(state, snapshots),
            }
            if small_file_bytes is not None:
                values["small_file_ratio"] = _small_file_ratio(iceberg, small_file_bytes)
    except OffloadError as e:
        errors.append(e)
        values = {"iceberg_unreadable": True}
    try:
        with table.source.snapshot(spec) as snap:
            newest = snap.max_event_time()
            values["source_max_ts"] = checked_event_time(newest, spec.name, spec.cursor.event_time)
    except OffloadError as e:
        errors.append(e)
    return Observation(now_us, **values, errors=tuple(errors))


@contextmanager
def shared_sources(tables: Iterable[TableHandle]) -> Iterator[list[TableHandle]]:
    """``tables`` with one hot tier per configured source, each keeping its connection for the
    reads of all its tables until the block ends (for looking at many tables one after another,
    in one thread)."""
    tiers: dict[SourceSpec, HotTier] = {}
    shared = []
    with ExitStack() as stack:
        for table in tables:
            source = table.spec.source
            if source not in tiers:
                tiers[source] = table.source
                stack.enter_context(table.source.connected())
            shared.append(replace(table, source=tiers[source]))
        yield shared


def _small_file_ratio(iceberg: Table, threshold: int) -> float:
    """``small_file_ratio`` of the live files, which only a table of two or more data files needs
    to list (the snapshot summary counts them): listing reads every manifest."""
    snapshot = iceberg.current_snapshot()
    summary = snapshot.summary if snapshot else None
    if summary is not None and int(summary.additional_properties.get("total-data-files", 2)) < 2:
        return 0.0
    return small_file_ratio(live_data_files(iceberg), threshold)


def _watermark_advanced_ms(state: CommittedState, snapshots: list[Snapshot]) -> int | None:
    """When the watermark last moved: kept with it, or, on tables last written before that was
    kept, the newest offload snapshot that expiry has not removed yet."""
    if state.watermark is not None and state.watermark.committed_at_ms is not None:
        return state.watermark.committed_at_ms
    return max((s.timestamp_ms for s in snapshots if _is_offload(s)), default=None)


def _is_offload(snapshot: Snapshot) -> bool:
    summary = snapshot.summary
    return summary is not None and is_offload_commit(summary.additional_properties)


def table_status(table: TableHandle, now_us: int) -> dict[str, Any]:
    """The ``status --json`` entry of one table at wall-clock ``now_us``; unreachable parts are
    reported, not raised."""
    spec = table.spec
    seen = observe(table, now_us)
    snapshot = seen.snapshot
    catalog = table.catalog.spec
    return {
        "name": spec.name,
        "source": {
            "kind": spec.source.kind,
            "uri": table.source.location(),
            "table": spec.source_table,
        },
        "iceberg_identifier": spec.iceberg_identifier,
        "catalog": {"name": catalog.name, **redact(catalog.properties)},
        "watermark": iso(seen.watermark_ts),
        "source_max": iso(seen.source_max_ts),
        "lag_seconds": seen.lag_seconds,
        "iceberg_rows": seen.iceberg_rows,
        "snapshot_id": snapshot.snapshot_id if snapshot else None,
        "snapshot_time": iso(snapshot.timestamp_ms * 1000) if snapshot else None,
        "errors": [{"error_type": e.error_type, "message": str(e)} for e in seen.errors],
    }
