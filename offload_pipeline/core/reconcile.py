"""Reconciliation: the hot-tier rows up to the watermark against the Iceberg table, by key."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from offload_pipeline.config import TableSpec
from offload_pipeline.core.sink import IcebergSink, read_state
from offload_pipeline.core.sources import HotTier
from offload_pipeline.core.window import CursorValue


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

    @property
    def ok(self) -> bool:
        return self.missing_keys == 0 and self.duplicate_rows == 0 and self.unexpected_keys == 0


def reconcile(spec: TableSpec, source: HotTier, sink: IcebergSink) -> Reconciliation:
    """Compare keys of rows with cursor <= the committed watermark on both sides."""
    keys = spec.primary_key
    table = sink.load(spec)
    watermark = read_state(table).watermark if table is not None else None
    if watermark is None:
        with source.snapshot(spec) as snap:
            hot = pa.table({k: pa.array([], snap.schema().field(k).type) for k in keys})
    else:
        with source.snapshot(spec) as snap:
            hot = snap.keys(keys, watermark.cursor)
    if table is None:
        iceberg = hot.slice(0, 0)
    else:
        iceberg = table.scan(selected_fields=keys).to_arrow().select(list(keys))
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
    )
