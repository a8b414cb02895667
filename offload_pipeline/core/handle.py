"""What every core verb works on: one configured table, its hot tier and its Iceberg catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyiceberg.table import Table

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.iceberg.schema import SchemaChange
from offload_pipeline.core.lock import table_lock
from offload_pipeline.core.sources import (
    HotTier,
    SourceSnapshot,
    null_cursor_error,
    open_source,
)


@dataclass(frozen=True)
class TableHandle:
    """A table of the config with the two sides it is offloaded between.

    Opening is lazy on both sides: building a handle connects to nothing.
    """

    spec: TableSpec
    source: HotTier
    catalog: IcebergCatalog

    @contextmanager
    def writing(
        self, run: RunSpec
    ) -> Iterator[tuple[SourceSnapshot, Table, tuple[SchemaChange, ...]]]:
        """Hold the table's writer lock and one hot-tier snapshot, with the Iceberg table loaded
        for writing (created, or evolved to the hot-tier schema: the changes applied).

        Raises:
            NullCursorError: rows of the snapshot have a NULL cursor column; nothing is written.
        """
        with (
            table_lock(run.lock_dir, self.spec.name, run.lock_timeout_seconds),
            self.source.snapshot(self.spec) as snap,
        ):
            # no window holds such rows: refuse before creating or writing anything
            if nulls := snap.null_cursor_rows():
                raise null_cursor_error(self.spec, nulls)
            iceberg, changes = self.catalog.prepare_table(self.spec, snap.schema())
            yield snap, iceberg, changes


def open_table(spec: TableSpec, catalog: IcebergCatalog) -> TableHandle:
    """The handle of ``spec`` with its configured hot tier."""
    return TableHandle(spec, open_source(spec.source), catalog)
