"""The two jobs (the bronze offload cycle, Iceberg maintenance), the daily partitions, and the two
kinds of bronze run.

Every bronze asset is partitioned by UTC day so the Dagster UI can backfill a day range in one
run. A run tagged ``offload/mode=incremental`` (the schedule, ``offload-pipeline run``) offloads
everything above the watermark whatever its partition says; any other run (a backfill, or a
partition materialized by hand) replaces the rows of its partition range.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from offload_pipeline.config import Config, RunSpec
from offload_pipeline.defs.dagster_internals import UnresolvedAssetJobDefinition
from offload_pipeline.defs.maintenance import build_maintenance_op

GROUP = "bronze"
BRONZE_JOB = "bronze_offload_job"
MAINTENANCE_JOB = "iceberg_maintenance_job"
MODE_TAG = "offload/mode"
INCREMENTAL = "incremental"
BACKFILL = "backfill"
INCREMENTAL_TAGS = {MODE_TAG: INCREMENTAL}


def build_partitions(config: Config) -> dg.DailyPartitionsDefinition:
    """UTC days from the configured start up to and including today (today is still open)."""
    return dg.DailyPartitionsDefinition(
        start_date=config.partitions_start, end_offset=1, timezone="UTC"
    )


def partition_of(moment: datetime) -> str:
    """The daily partition key holding ``moment``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def is_incremental(tags: Mapping[str, str]) -> bool:
    """Whether a run with ``tags`` is an incremental offload (else: a backfill of its range)."""
    return tags.get(MODE_TAG) == INCREMENTAL


def build_bronze_job(run: RunSpec) -> UnresolvedAssetJobDefinition:
    """All bronze assets in one run (one *cycle*), killed by run monitoring past its runtime."""
    return dg.define_asset_job(
        BRONZE_JOB,
        selection=dg.AssetSelection.groups(GROUP),
        description="Offload every configured bronze table once (one cycle).",
        tags=_max_runtime(run),
    )


def build_maintenance_job(config: Config) -> dg.JobDefinition:
    """Every table's maintenance op, independent of each other, in one job."""
    ops = [build_maintenance_op(spec, config.run) for spec in config.tables]

    @dg.job(
        name=MAINTENANCE_JOB,
        description="Iceberg maintenance of every table: compaction, snapshot expiry, orphans.",
        tags=_max_runtime(config.run),
    )
    def _job() -> None:
        for op in ops:
            op()

    return _job


def _max_runtime(run: RunSpec) -> dict[str, str]:
    return {"dagster/max_runtime": str(run.max_runtime_seconds)}
