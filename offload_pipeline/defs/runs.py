"""Running a cycle in this process (``offload-pipeline run``) against the Dagster instance.

In-process runs are not watched by the daemon's run monitoring, so a run whose process was
killed would stay STARTED and keep its pool slot forever. Each in-process run is tagged with its
host and pid; the next one fails the dead ones and frees their slots before it starts.
"""

import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from offload_pipeline.config import Config
from offload_pipeline.defs.eventlog import RUN_FAILURE, error_type_of
from offload_pipeline.defs.jobs import BRONZE_JOB, INCREMENTAL_TAGS, partition_of

HOST_TAG = "offload/host"
PID_TAG = "offload/pid"


@dataclass
class TableOutcome:
    """How one table fared in a cycle."""

    table: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    message: str | None = None


def reclaim_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this host's in-process runs whose process is gone and free their pool slots."""
    host = socket.gethostname()
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host})
    )
    reclaimed = []
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and _alive(pid):
            continue
        instance.report_run_failed(run, f"run process {pid} on {host} is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(run.run_id)
    return reclaimed


def in_process_tags() -> dict[str, str]:
    """Tags that let the next in-process run tell whether this one's process is gone."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def failed_outcome(table: str, event: dg.DagsterEvent) -> TableOutcome:
    """The outcome of ``table`` from its STEP_FAILURE event: the error type the step reported."""
    data = event.step_failure_data
    user = data.user_failure_data
    message = user.description if user is not None else None
    return TableOutcome(
        table,
        success=False,
        error_type=error_type_of(event),
        message=message or (data.error.message.strip() if data.error else None),
    )


def run_cycle(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the bronze job for ``tables`` (all when empty) in this process."""
    names = tables or [t.name for t in config.tables]
    for name in names:
        config.table(name)  # unknown names fail before a run is created
    reclaim_dead_runs(instance)
    job = defs.resolve_job_def(BRONZE_JOB)
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(name) for name in names],
        partition_key=partition_of(datetime.now(UTC)),
        raise_on_error=False,
        tags={**INCREMENTAL_TAGS, **in_process_tags()},
    )
    outcomes = {name: TableOutcome(name, success=False, error_type=RUN_FAILURE) for name in names}
    for event in result.get_asset_materialization_events():
        name = event.asset_key.to_user_string()  # type: ignore[union-attr]
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        outcomes[name] = TableOutcome(name, success=True, metadata=metadata)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            name = event.step_key or ""
            outcomes[name] = failed_outcome(name, event)
    return [outcomes[name] for name in names]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
