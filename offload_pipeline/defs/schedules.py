"""The two schedules: the offload cycle (every 15 minutes by default, running as soon as the daemon
starts unless ``schedule.enabled: false``) and the daily Iceberg maintenance."""

import dagster as dg

from offload_pipeline.config import MaintenanceSpec
from offload_pipeline.defs.dagster_internals import is_valid_cron_string
from offload_pipeline.defs.jobs import BRONZE_JOB, INCREMENTAL_TAGS, MAINTENANCE_JOB
from offload_pipeline.errors import ConfigInvalidError

BRONZE_SCHEDULE = "bronze_offload_schedule"
MAINTENANCE_SCHEDULE = "iceberg_maintenance_schedule"


def build_bronze_schedule(cron: str, enabled: bool = True) -> dg.ScheduleDefinition:
    """Run the bronze job (one incremental cycle) on ``cron`` (UTC)."""
    return dg.ScheduleDefinition(
        name=BRONZE_SCHEDULE,
        job_name=BRONZE_JOB,
        cron_schedule=checked_cron(cron, "schedule"),
        execution_timezone="UTC",
        default_status=_status(enabled),
        tags=INCREMENTAL_TAGS,
        description="One incremental offload cycle over every bronze table.",
    )


def build_maintenance_schedule(settings: MaintenanceSpec) -> dg.ScheduleDefinition:
    """Run the maintenance job on ``maintenance.cron`` (UTC)."""
    return dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job_name=MAINTENANCE_JOB,
        cron_schedule=checked_cron(settings.cron, "maintenance"),
        execution_timezone="UTC",
        default_status=_status(settings.enabled),
        description="Daily Iceberg maintenance of every table.",
    )


def _status(enabled: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED


def checked_cron(cron: str, where: str) -> str:
    """``cron`` if Dagster's own cron parser takes it, else one line naming the config field.

    Raises:
        ConfigInvalidError: not a 5-field cron expression Dagster accepts.
    """
    if not is_valid_cron_string(cron):
        raise ConfigInvalidError(
            f"{where}: cron: {cron!r} is not a cron expression (5 fields, e.g. '*/15 * * * *')"
        )
    return cron
