"""The daily Iceberg maintenance job: one op per table, in the table's offload pool.

Each op runs in the same Dagster pool as its table's asset (``offload_<table>``, limit 1), so
maintenance and an offload of one table are never scheduled together; the core takes the table's
file lock too, for runs Dagster does not coordinate. ``offload-pipeline maintain`` executes this
job in-process, like ``run``, so its runs show in the UI.

No ``from __future__ import annotations`` here: Dagster inspects the context annotation at runtime.
"""

import dagster as dg

from offload_pipeline.config import Config, MaintenanceSpec, RunSpec, TableSpec
from offload_pipeline.core.maintenance import MaintenanceResult, maintain
from offload_pipeline.defs.eventlog import RUN_FAILURE
from offload_pipeline.defs.metadata import MetadataKey
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.runs import (
    TableOutcome,
    failed_outcome,
    in_process_tags,
    reclaim_dead_runs,
)
from offload_pipeline.defs.steps import pool_name, retry_policy, step_failure
from offload_pipeline.errors import OffloadError
from offload_pipeline.metrics import push
from offload_pipeline.metrics.collect import maintenance_families

MAINTENANCE_JOB = "iceberg_maintenance_job"
MAINTENANCE_SCHEDULE = "iceberg_maintenance_schedule"


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
            result = maintain(offload.config, spec, sink=offload.sink, run_id=context.run_id)
        except OffloadError as e:
            raise step_failure(e, spec.name) from e
        if result.exists:
            push.push_table(
                offload.config.pushgateway_url,
                spec.name,
                maintenance_families(spec.name, result.finished_at),
            )
        context.log.info(
            f"{spec.name}: data files {result.data_files_before} -> {result.data_files_after}, "
            f"snapshots {result.snapshots_before} -> {result.snapshots_after}, "
            f"{result.orphans_removed} orphan file(s) removed"
        )
        return dg.Output(None, metadata=maintenance_metadata(result))

    return _maintain


def maintenance_metadata(result: MaintenanceResult) -> dict[str, object]:
    """The figures of one maintenance, numeric so the UI can plot them."""
    metadata: dict[str, object] = {
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


def build_maintenance_job(config: Config) -> dg.JobDefinition:
    """Every table's maintenance op, independent of each other, in one job."""
    ops = [build_maintenance_op(spec, config.run) for spec in config.tables]

    @dg.job(
        name=MAINTENANCE_JOB,
        description="Iceberg maintenance of every table: compaction, snapshot expiry, orphans.",
        tags={"dagster/max_runtime": str(config.run.max_runtime_seconds)},
    )
    def _job() -> None:
        for op in ops:
            op()

    return _job


def build_maintenance_schedule(
    job: dg.JobDefinition, settings: MaintenanceSpec
) -> dg.ScheduleDefinition:
    """Run the maintenance job on ``maintenance.cron`` (UTC)."""
    return dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job=job,
        cron_schedule=settings.cron,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description="Daily Iceberg maintenance of every table.",
    )


def run_maintenance(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the maintenance job for ``tables`` (all when empty) in this process."""
    names = tables or [t.name for t in config.tables]
    for name in names:
        config.table(name)  # unknown names fail before a run is created
    reclaim_dead_runs(instance)
    result = defs.resolve_job_def(MAINTENANCE_JOB).execute_in_process(
        instance=instance,
        op_selection=[op_name(name) for name in names],
        raise_on_error=False,
        tags=in_process_tags(),
    )
    by_op = {op_name(name): name for name in names}
    outcomes = {name: TableOutcome(name, success=False, error_type=RUN_FAILURE) for name in names}
    for event in result.all_events:
        name = by_op.get(event.step_key or "")
        if name is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            metadata = {k: v.value for k, v in event.step_output_data.metadata.items()}
            outcomes[name] = TableOutcome(name, success=True, metadata=metadata)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcomes[name] = failed_outcome(name, event)
    return [outcomes[name] for name in names]
