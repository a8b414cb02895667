"""The resource runs hand to assets: the parsed config and the core objects built from it."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from offload_pipeline.config import Config, TableSpec, load_config
from offload_pipeline.core.backfill import BackfillResult, backfill_range
from offload_pipeline.core.offload import OffloadResult, offload_table
from offload_pipeline.core.reconcile import ClosedWindowCheck, check_closed_windows
from offload_pipeline.core.sink import IcebergSink
from offload_pipeline.core.sources import open_source


class OffloadResource(dg.ConfigurableResource):
    """Opens the hot tier and the Iceberg catalog of the config file at ``config_path``."""

    config_path: str

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def sink(self) -> IcebergSink:
        return IcebergSink(self.config.catalog)

    def offload(self, spec: TableSpec, run_id: str) -> OffloadResult:
        """One offload attempt of ``spec`` under its writer lock."""
        run = self.config.run
        return offload_table(
            spec,
            open_source(spec.source),
            self.sink,
            run_id=run_id,
            batch_rows=run.batch_rows,
            lock_dir=run.lock_dir,
            lock_timeout_s=run.lock_timeout_seconds,
        )

    def backfill(self, spec: TableSpec, start_ts: int, end_ts: int, run_id: str) -> BackfillResult:
        """Replace ``[start_ts, end_ts)`` of ``spec`` under its writer lock."""
        run = self.config.run
        return backfill_range(
            spec,
            open_source(spec.source),
            self.sink,
            start_ts,
            end_ts,
            run_id=run_id,
            batch_rows=run.batch_rows,
            lock_dir=run.lock_dir,
            lock_timeout_s=run.lock_timeout_seconds,
        )

    def check(self, spec: TableSpec) -> ClosedWindowCheck:
        """Reconcile the closed windows of ``spec``."""
        return check_closed_windows(
            spec, open_source(spec.source), self.sink, days=self.config.reconcile_days
        )
