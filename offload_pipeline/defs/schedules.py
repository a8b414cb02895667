"""The cycle schedule: every 15 minutes by default, running as soon as the daemon starts
(unless the config says ``schedule.enabled: false``)."""

from __future__ import annotations

import dagster as dg

BRONZE_SCHEDULE = "bronze_offload_schedule"


def build_bronze_schedule(
    job: dg.UnresolvedAssetJobDefinition, cron: str, enabled: bool = True
) -> dg.ScheduleDefinition:
    """Run ``job`` on ``cron`` (UTC)."""
    return dg.ScheduleDefinition(
        name=BRONZE_SCHEDULE,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
        ),
        description="One offload cycle over every bronze table.",
    )
