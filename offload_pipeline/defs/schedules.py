"""The cycle schedule: every 15 minutes by default, running as soon as the daemon starts
(unless the config says ``schedule.enabled: false``)."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from offload_pipeline.defs.jobs import INCREMENTAL_TAGS, partition_of

BRONZE_SCHEDULE = "bronze_offload_schedule"


def build_bronze_schedule(
    job: UnresolvedAssetJobDefinition, cron: str, enabled: bool = True
) -> dg.ScheduleDefinition:
    """Run ``job`` incrementally on ``cron`` (UTC), as the partition of the tick's day."""

    @dg.schedule(
        name=BRONZE_SCHEDULE,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
        ),
        description="One incremental offload cycle over every bronze table.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(
            partition_key=partition_of(context.scheduled_execution_time),
            tags=INCREMENTAL_TAGS,
        )

    return _schedule
