"""The resource runs hand to assets: the parsed config and the core objects built from it."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from offload_pipeline.config import Config, TableSpec, load_config
from offload_pipeline.core.backfill import BackfillResult, backfill
from offload_pipeline.core.handle import TableHandle, open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.maintenance import MaintenanceResult, maintain
from offload_pipeline.core.offload import OffloadResult, offload
from offload_pipeline.core.reconcile import (
    ClosedWindowCheck,
    check_closed_windows,
    iceberg_day_counts,
)


class OffloadResource(dg.ConfigurableResource):
    """Opens the hot tier and the Iceberg catalog of the config file at ``config_path``."""

    config_path: str

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def catalog(self) -> IcebergCatalog:
        return IcebergCatalog(self.config.catalog)

    def table(self, spec: TableSpec) -> TableHandle:
        """``spec`` with its hot tier and the catalog."""
        return open_table(spec, self.catalog)

    def offload(self, spec: TableSpec, run_id: str) -> OffloadResult:
        """One offload attempt of ``spec`` under its writer lock."""
        return offload(self.table(spec), self.config.run, run_id=run_id)

    def backfill(
        self, spec: TableSpec, start_ts: int, end_ts: int, run_id: str, up_to_watermark: bool
    ) -> BackfillResult:
        """Replace ``[start_ts, end_ts)`` of ``spec`` under its writer lock."""
        return backfill(
            self.table(spec),
            self.config.run,
            start_ts,
            end_ts,
            run_id=run_id,
            up_to_watermark=up_to_watermark,
        )

    def days_held(self, spec: TableSpec, first_ts: int, end_ts: int) -> dict[int, int]:
        """Rows per UTC day (keyed by its midnight, µs) that Iceberg holds in
        ``[first_ts, end_ts)``; empty before the first commit."""
        iceberg = self.catalog.load(spec)
        if iceberg is None:
            return {}
        return iceberg_day_counts(iceberg, spec.cursor.event_time, first_ts, end_ts)

    def maintain(self, spec: TableSpec, run_id: str) -> MaintenanceResult:
        """Iceberg maintenance of ``spec`` under its writer lock."""
        return maintain(self.table(spec), self.config.run, self.config.maintenance, run_id=run_id)

    def check(self, spec: TableSpec) -> ClosedWindowCheck:
        """Reconcile the closed windows of ``spec``."""
        return check_closed_windows(self.table(spec), self.config.reconcile_days)
