"""Running a job in this process (``offload-pipeline run`` and ``maintain``) against the Dagster
instance, and reading back how each table fared.

In-process runs are not watched by the daemon's run monitoring, so a run whose process was
killed would stay STARTED and keep its pool slot forever. Each in-process run is tagged with its
host and pid; the next one fails the dead ones and frees their slots before it starts, and a
process ending before its run does (a stop that reached no safe point) fails its own. Pools a run
needs are created before it starts, so hosts starting at once never race to create one.
"""

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy.exc import DBAPIError

from offload_pipeline.config import Config
from offload_pipeline.defs.checks import RECONCILIATION_CHECK
from offload_pipeline.defs.eventlog import RUN_FAILURE, error_type_of
from offload_pipeline.defs.jobs import BRONZE_JOB, INCREMENTAL_TAGS, MAINTENANCE_JOB, partition_of
from offload_pipeline.defs.maintenance import op_name
from offload_pipeline.defs.steps import pool_name
from offload_pipeline.errors import first_line

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


class _OneLineFormatter(logging.Formatter):
    """Dagster's console line with an event's error cut to its message line: the stack stays in
    the event log (and on the console with ``--verbose``)."""

    def format(self, record: logging.LogRecord) -> str:
        # dagster appends an event's error after a blank line
        return super().format(record).split("\n\n", 1)[0]


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
    description="Dagster's console log, an event's error shown as one line.",
)
def one_line_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """The console logger of in-process runs unless the command line asks for tracebacks."""
    logger = logging.Logger("dagster", init_context.logger_config["log_level"])
    handler = logging.StreamHandler()
    handler.setFormatter(
        _OneLineFormatter(
            "%(asctime)s - %(name)s - %(levelname)s - %(message)s", "%Y-%m-%d %H:%M:%S %z"
        )
    )
    logger.addHandler(handler)
    return logger


def in_process_definitions(defs: dg.Definitions, verbose: bool) -> dg.Definitions:
    """``defs`` for a run in this process: errors on the console are one line unless
    ``verbose`` (Dagster's own console logger, with stacks)."""
    if verbose:
        return defs
    return dg.Definitions.merge(defs, dg.Definitions(loggers={"console": one_line_console_logger}))


def run_cycle(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the bronze job for ``tables`` (all when empty) in this process."""
    names = _names(config, tables)
    create_pools(instance, [pool_name(name) for name in names])
    return _execute(
        defs.resolve_job_def(BRONZE_JOB),
        instance,
        names,
        _asset_step,
        tags=INCREMENTAL_TAGS,
        asset_selection=[dg.AssetKey(name) for name in names],
        partition_key=partition_of(datetime.now(UTC)),
    )


def run_maintenance(
    defs: dg.Definitions, config: Config, instance: dg.DagsterInstance, tables: list[str]
) -> list[TableOutcome]:
    """Execute the maintenance job for ``tables`` (all when empty) in this process."""
    names = _names(config, tables)
    create_pools(instance, [pool_name(name) for name in names])
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


def create_pools(instance: dg.DagsterInstance, pools: Sequence[str]) -> None:
    """Give every pool of ``pools`` that has no slots yet its default limit.

    A step creates its pool on first use, but on PostgreSQL storage (dagster 1.13.27) the
    process that loses the race to create it fails its whole run (the fallback after the unique
    violation runs in the aborted transaction); here the loser sees the winner's pool instead.
    """
    storage = instance.event_log_storage
    for pool, info in storage.get_concurrency_infos(pools).items():
        if info.slot_count:
            continue
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except DBAPIError:
            if not storage.get_concurrency_info(pool).slot_count:
                raise


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
        # Dagster starts only the loggers a run config names (else its own default console)
        run_config={"loggers": {"console": {}}},
        tags={**(tags or {}), **in_process_tags()},
        **selection,
    )
    return _outcomes(result.all_events, names, step_key)


def _outcomes(
    events: Sequence[dg.DagsterEvent], names: Sequence[str], step_key: Callable[[str], str]
) -> list[TableOutcome]:
    """The step's output metadata on success, the reported error type on failure,
    ``run_failure`` for a step that never finished; a table whose reconciliation check step
    failed (the run is then failed in Dagster too) is failed as well."""
    by_step = {step_key(name): name for name in names}
    checks = {_check_step(name): name for name in names}
    outcomes = {name: TableOutcome(name, success=False, error_type=RUN_FAILURE) for name in names}
    metadata: dict[str, dict[str, Any]] = {}
    crashed_checks: dict[str, dg.DagsterEvent] = {}
    for event in events:
        if event.step_key in checks and event.event_type == dg.DagsterEventType.STEP_FAILURE:
            crashed_checks[checks[event.step_key]] = event
        name = by_step.get(event.step_key or "")
        if name is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            metadata[name] = {k: v.value for k, v in event.step_output_data.metadata.items()}
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            outcomes[name] = TableOutcome(name, success=True, metadata=metadata.get(name, {}))
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcomes[name] = _failed(name, event)
    for name, event in crashed_checks.items():
        if outcomes[name].success:
            outcomes[name] = TableOutcome(
                name,
                success=False,
                metadata=outcomes[name].metadata,
                error_type=error_type_of(event),
                message=f"rows committed, but the reconciliation check failed: {_cause(event)}",
            )
    return [outcomes[name] for name in names]


def _check_step(table: str) -> str:
    """The step of a bronze asset's reconciliation check (Dagster names it asset_check)."""
    return f"{table}_{RECONCILIATION_CHECK}"


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
    user = event.step_failure_data.user_failure_data
    message = user.description if user is not None else None
    return TableOutcome(
        table,
        success=False,
        error_type=error_type_of(event),
        # an unexplained error reaches here wrapped ("Exceeded max_retries"): show its cause
        message=message or _cause(event),
    )


def _cause(event: dg.DagsterEvent) -> str:
    """The first line of the innermost exception of a failed step (Dagster wraps it)."""
    error = event.step_failure_data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return first_line(Exception(error.message)) if error is not None else "no error recorded"


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
