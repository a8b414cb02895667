"""The asset job over all bronze tables: what the schedule and ``offload-pipeline run`` execute."""

from __future__ import annotations

import dagster as dg

from offload_pipeline.config import RunSpec

GROUP = "bronze"
BRONZE_JOB = "bronze_offload_job"


def build_bronze_job(run: RunSpec) -> dg.UnresolvedAssetJobDefinition:
    """All bronze assets in one run (one *cycle*), killed by run monitoring past its runtime."""
    return dg.define_asset_job(
        BRONZE_JOB,
        selection=dg.AssetSelection.groups(GROUP),
        description="Offload every configured bronze table once (one cycle).",
        tags={"dagster/max_runtime": str(run.max_runtime_seconds)},
    )
