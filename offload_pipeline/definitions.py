"""The Dagster code location: every configured table as an asset, the jobs and their schedules.

``defs`` is loaded lazily: the config (``$OFFLOAD_CONFIG``, else ``./offload.yaml``) is read when
Dagster loads the code location, not when this module is imported; the command line passes its
own config to ``build_definitions``.
"""

from __future__ import annotations

import dagster as dg

from offload_pipeline.config import Config, load_config
from offload_pipeline.defs.assets import build_days_asset, build_table_asset
from offload_pipeline.defs.executor import build_executor
from offload_pipeline.defs.jobs import build_bronze_job, build_maintenance_job, build_partitions
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.schedules import build_bronze_schedule, build_maintenance_schedule
from offload_pipeline.defs.sensors import offload_metrics_sensor, offload_run_failure_sensor


def build_definitions(config: Config) -> dg.Definitions:
    """Definitions for ``config``: per table its offload asset (with its reconciliation check)
    and its days asset; the offload and maintenance jobs, their schedules, the sensors, and the
    configured executor."""
    partitions = build_partitions(config)
    return dg.Definitions(
        assets=[
            *(
                build_table_asset(spec, config.run, config.partitions_start)
                for spec in config.tables
            ),
            *(build_days_asset(spec, config.run, partitions) for spec in config.tables),
        ],
        jobs=[build_bronze_job(config.run), build_maintenance_job(config)],
        schedules=[
            build_bronze_schedule(config.schedule_cron, config.schedule_enabled),
            build_maintenance_schedule(config.maintenance),
        ],
        sensors=[offload_metrics_sensor, offload_run_failure_sensor],
        resources={"offload": OffloadResource(config_path=str(config.path))},
        executor=build_executor(config.executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What ``workspace.yaml`` and ``dagster dev`` load: the definitions of the configured file."""
    return build_definitions(load_config())
