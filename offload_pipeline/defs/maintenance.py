"""The Iceberg maintenance op of each table, in the table's offload pool.

Each op runs in the same Dagster pool as its table's asset (``offload_<table>``, limit 1), so
maintenance and an offload of one table are never scheduled together; the core takes the table's
file lock too, for runs Dagster does not coordinate.

No ``from __future__ import annotations`` here: Dagster inspects the context annotation at runtime.
"""

import dagster as dg

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core.maintenance import MaintenanceResult
from offload_pipeline.defs.metadata import Metadata, MetadataKey
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.steps import pool_name, retry_policy, step_failure
from offload_pipeline.errors import OffloadError
from offload_pipeline.metrics import push
from offload_pipeline.metrics.budget import run_budget
from offload_pipeline.metrics.collect import maintenance_families

# metadata keys named after the ``MaintenanceResult`` fields they carry
_COUNTS = (
    MetadataKey.SNAPSHOTS_BEFORE,
    MetadataKey.SNAPSHOTS_AFTER,
    MetadataKey.DATA_FILES_BEFORE,
    MetadataKey.DATA_FILES_AFTER,
    MetadataKey.PARTITIONS_COMPACTED,
    MetadataKey.FILES_COMPACTED,
    MetadataKey.FILES_WRITTEN,
    MetadataKey.SNAPSHOTS_EXPIRED,
    MetadataKey.ORPHANS_REMOVED,
    MetadataKey.ORPHAN_BYTES_REMOVED,
)
_RATIOS = (MetadataKey.SMALL_FILE_RATIO_BEFORE, MetadataKey.SMALL_FILE_RATIO_AFTER)


def op_name(table: str) -> str:
    """The maintenance op of ``table`` (never the table's own name, which is its asset's step)."""
    return f"maintain_{table}"


def build_maintenance_op(spec: TableSpec, run: RunSpec) -> dg.OpDefinition:
    """Maintain ``spec``'s Iceberg table, then push its last-maintenance time."""

    @dg.op(
        name=op_name(spec.name),
        pool=pool_name(spec.name),
        required_resource_keys={"offload"},
        tags={"offload/table": spec.name},
        description=(
            f"Compact small files, expire old snapshots and remove orphan files of "
            f"`{spec.iceberg_identifier}`."
        ),
        retry_policy=retry_policy(run),
    )
    def _maintain(context: dg.OpExecutionContext) -> dg.Output:
        offload: OffloadResource = context.resources.offload
        try:
            result = offload.maintain(spec, run_id=context.run_id)
        except OffloadError as e:
            raise step_failure(e, spec.name) from e
        if result.exists:
            push.push_table(
                offload.config.pushgateway_url,
                offload.config.pipeline,
                spec.name,
                maintenance_families(spec.name, result.finished_at),
                budget=run_budget(context.run_id),
            )
        context.log.info(
            f"{spec.name}: data files {result.data_files_before} -> {result.data_files_after}, "
            f"snapshots {result.snapshots_before} -> {result.snapshots_after}, "
            f"{result.orphans_removed} orphan file(s) removed"
        )
        return dg.Output(None, metadata=maintenance_metadata(result))

    return _maintain


def maintenance_metadata(result: MaintenanceResult) -> Metadata:
    """The figures of one maintenance, numeric so the UI can plot them."""
    metadata: Metadata = {
        MetadataKey.TABLE: result.table,
        MetadataKey.TABLE_EXISTS: dg.MetadataValue.bool(result.exists),
    }
    metadata |= {key: dg.MetadataValue.int(getattr(result, key)) for key in _COUNTS}
    for key in _RATIOS:
        metadata[key] = dg.MetadataValue.float(round(getattr(result, key), 4))
    metadata[MetadataKey.DURATION_SECONDS] = dg.MetadataValue.float(
        round(result.duration_seconds, 3)
    )
    if result.exists:
        metadata["finished_at"] = dg.MetadataValue.timestamp(result.finished_at)
    return metadata
