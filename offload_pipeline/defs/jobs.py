"""The two jobs (the bronze offload cycle, Iceberg maintenance), the daily partitions, and the
asset keys and tags of the two kinds of bronze run.

Each table has two assets on one Iceberg table: the unpartitioned offload asset (named after the
table; materializing it offloads everything above the watermark) and its day-partitioned
``<table>_days`` asset (materializing a day range replaces those days, in one run). Offload runs
report the days they wrote on the days asset, so its partition status is what Iceberg holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from offload_pipeline.config import Config, RunSpec
from offload_pipeline.defs.dagster_internals import UnresolvedAssetJobDefinition
from offload_pipeline.defs.maintenance import build_maintenance_op

GROUP = "bronze"
DAYS_GROUP = "bronze_days"
BRONZE_JOB = "bronze_offload_job"
MAINTENANCE_JOB = "iceberg_maintenance_job"
MODE_TAG = "offload/mode"
INCREMENTAL = "incremental"
BACKFILL = "backfill"
INCREMENTAL_TAGS = {MODE_TAG: INCREMENTAL}
TABLE_TAG = "offload/table"
RANGE_TAG = "offload/range"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def days_key(table: str) -> dg.AssetKey:
    """The day-partitioned asset of ``table``: one partition per UTC day of its Iceberg table."""
    return dg.AssetKey(f"{table}_days")


def build_partitions(config: Config) -> dg.DailyPartitionsDefinition:
    """UTC days from the configured start up to and including today (today is still open: a
    backfill of it ends at the watermark)."""
    return dg.DailyPartitionsDefinition(
        start_date=config.partitions_start, end_offset=1, timezone="UTC"
    )


def partition_of(moment: datetime) -> str:
    """The daily partition key holding ``moment``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def is_backfill(tags: Mapping[str, str]) -> bool:
    """Whether a run with ``tags`` backfills a day range: tagged so, or untagged and partitioned
    (a days-asset run from the UI, or a run recorded when the offload assets were partitioned)."""
    if tags.get(MODE_TAG) in (INCREMENTAL, BACKFILL):
        return tags[MODE_TAG] == BACKFILL
    return PARTITION_TAG in tags or RANGE_START_TAG in tags


def build_bronze_job(run: RunSpec) -> UnresolvedAssetJobDefinition:
    """All offload assets in one run (one *cycle*), killed by run monitoring past its runtime."""
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
