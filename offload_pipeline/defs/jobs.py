"""The asset job over all bronze tables, its daily partitions, and the two kinds of run.

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

GROUP = "bronze"
BRONZE_JOB = "bronze_offload_job"
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


def build_bronze_job(run: RunSpec) -> dg.UnresolvedAssetJobDefinition:
    """All bronze assets in one run (one *cycle*), killed by run monitoring past its runtime."""
    return dg.define_asset_job(
        BRONZE_JOB,
        selection=dg.AssetSelection.groups(GROUP),
        description="Offload every configured bronze table once (one cycle).",
        tags={"dagster/max_runtime": str(run.max_runtime_seconds)},
    )
