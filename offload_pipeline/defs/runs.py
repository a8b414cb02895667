"""Running a job in this process (``offload-pipeline run`` and ``maintain``) against the Dagster
instance, and reading back how each table fared.

In-process runs are not watched by the daemon's run monitoring, so a run whose process was
killed would stay STARTED and keep its pool slot forever. Each in-process run is tagged with its
host and pid; the next one fails the dead ones and frees their slots before it starts, and a
process ending before its run does (a stop that reached no safe point) fails its own.
"""

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from offload_pipeline.config import Config
from offload_pipeline.defs.eventlog import RUN_FAILURE, error_type_of
from offload_pipeline.defs.jobs import BRONZE_JOB, INCREMENTAL_TAGS, MAINTENANCE_JOB, partition_of
from offload_pipeline.defs.maintenance import op_name
from offload_pipeline.defs.metrics import push_cycle_running
from offload_pipeline.metrics.budget import run_budget

HOST_TAG = "offload/host"
PID_TAG = "offload/pid"


@dataclass
class TableOutcome:
    """How one table fared in a run."""

    table: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    message: str | None = None


def run_cycle(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the bronze job for ``tables`` (all when empty) in this process.

    The cycle's start is pushed first and cleared after it ends, so a hung cycle is visible to
    the alerts without a metrics sensor; both pushes share the run's push budget with its hooks.
    """
    names = _names(config, tables)
    run_id = str(uuid.uuid4())
    budget = run_budget(run_id)
    url, pipeline = config.pushgateway_url, config.pipeline
    push_cycle_running(url, pipeline, instance, starting=time.time(), budget=budget)
    try:
        return _execute(
            defs.resolve_job_def(BRONZE_JOB),
            instance,
            names,
            _asset_step,
            tags=INCREMENTAL_TAGS,
            asset_selection=[dg.AssetKey(name) for name in names],
            partition_key=partition_of(datetime.now(UTC)),
            run_id=run_id,
        )
    finally:
        push_cycle_running(url, pipeline, instance, budget=budget)


def run_maintenance(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the maintenance job for ``tables`` (all when empty) in this process."""
    names = _names(config, tables)
    return _execute(
        defs.resolve_job_def(MAINTENANCE_JOB),
        instance,
        names,
        op_name,
        op_selection=[op_name(name) for name in names],
    )


def reclaim_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this host's in-process runs whose process is gone and free their pool slots."""
    host = socket.gethostname()
    reclaimed = []
    for run in _started_runs(instance, {HOST_TAG: host}):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and _alive(pid):
            continue
        _fail(instance, run, f"run process {pid} on {host} is gone")
        reclaimed.append(run.run_id)
    return reclaimed


def fail_own_runs(instance: dg.DagsterInstance, reason: str) -> list[str]:
    """Fail the runs this process still has STARTED and free their pool slots, for a process
    about to end before its runs finish."""
    runs = _started_runs(instance, in_process_tags())
    for run in runs:
        _fail(instance, run, reason)
    return [run.run_id for run in runs]


def in_process_tags() -> dict[str, str]:
    """Tags that let the next in-process run tell whether this one's process is gone."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    names: Sequence[str],
    step_key: Callable[[str], str],
    tags: Mapping[str, str] | None = None,
    **selection: Any,
) -> list[TableOutcome]:
    """Run ``job`` over ``selection`` after reclaiming dead runs; one outcome per table, read
    from the events of its step (``step_key(table)``)."""
    reclaim_dead_runs(instance)
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={**(tags or {}), **in_process_tags()},
        **selection,
    )
    return _outcomes(result.all_events, names, step_key)


def _outcomes(
    events: Sequence[dg.DagsterEvent], names: Sequence[str], step_key: Callable[[str], str]
) -> list[TableOutcome]:
    """The step's output metadata on success, the reported error type on failure,
    ``run_failure`` for a step that never finished."""
    by_step = {step_key(name): name for name in names}
    outcomes = {name: TableOutcome(name, success=False, error_type=RUN_FAILURE) for name in names}
    metadata: dict[str, dict[str, Any]] = {}
    for event in events:
        name = by_step.get(event.step_key or "")
        if name is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            metadata[name] = {k: v.value for k, v in event.step_output_data.metadata.items()}
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            outcomes[name] = TableOutcome(name, success=True, metadata=metadata.get(name, {}))
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcomes[name] = _failed(name, event)
    return [outcomes[name] for name in names]


def _asset_step(table: str) -> str:
    """A bronze asset's step is named after its table."""
    return table


def _names(config: Config, tables: list[str]) -> list[str]:
    """``tables``, all when empty; unknown names fail before a run is created."""
    names = tables or [t.name for t in config.tables]
    for name in names:
        config.table(name)
    return names


def _failed(table: str, event: dg.DagsterEvent) -> TableOutcome:
    """The outcome of ``table`` from its STEP_FAILURE event."""
    data = event.step_failure_data
    user = data.user_failure_data
    message = user.description if user is not None else None
    return TableOutcome(
        table,
        success=False,
        error_type=error_type_of(event),
        message=message or (data.error.message.strip() if data.error else None),
    )


def _started_runs(instance: dg.DagsterInstance, tags: Mapping[str, str]) -> list[dg.DagsterRun]:
    filters = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags=dict(tags))
    return list(instance.get_runs(filters=filters))


def _fail(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> None:
    """Record ``run`` as failed; its pool slots are freed too (failing alone keeps them)."""
    instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
