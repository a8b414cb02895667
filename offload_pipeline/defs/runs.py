"""Running a job in this process (``offload-pipeline run``, ``maintain`` and ``backfill``) against
the Dagster instance, and reading back how each table fared.

In-process runs are not watched by the daemon's run monitoring, so a run whose process was
killed would stay STARTED and keep its pool slot forever. Each in-process run is tagged with its
host and pid; the next one fails the dead ones and frees their slots before it starts, and a
process ending before its run does (a stop that reached no safe point) fails its own. Pools a run
needs are created before it starts, so hosts starting at once never race to create one.
"""

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy.exc import DBAPIError

from offload_pipeline.config import Config
from offload_pipeline.core.window import from_micros, iso
from offload_pipeline.defs.checks import check_output
from offload_pipeline.defs.eventlog import RUN_FAILURE, error_type_of
from offload_pipeline.defs.jobs import (
    BACKFILL,
    BRONZE_JOB,
    INCREMENTAL_TAGS,
    MAINTENANCE_JOB,
    MODE_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RANGE_TAG,
    TABLE_TAG,
    days_key,
    partition_of,
)
from offload_pipeline.defs.maintenance import op_name
from offload_pipeline.defs.metrics import push_cycle_running
from offload_pipeline.defs.steps import pool_name
from offload_pipeline.errors import first_line
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
    """Execute the bronze job for ``tables`` (all when empty) in this process.

    The cycle's start is pushed first and cleared after it ends, so a hung cycle is visible to
    the alerts without a metrics sensor; both pushes share the run's push budget with its hooks.
    """
    names = _names(config, tables)
    create_pools(instance, [pool_name(name) for name in names])
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
            run_id=run_id,
        )
    finally:
        push_cycle_running(url, pipeline, instance, budget=budget)


def run_backfill(
    defs: dg.Definitions,
    config: Config,
    instance: dg.DagsterInstance,
    table: str,
    start_us: int,
    end_us: int,
) -> TableOutcome:
    """Replace ``[start_us, end_us)`` of ``table`` in this process: one run of its days asset
    over the days the range touches, as a UI range backfill is, given the exact range."""
    spec = config.table(table)
    key = days_key(spec.name)
    first, last = _day_range(config, start_us, end_us)
    rng = f"[{iso(start_us)}, {iso(end_us)})"
    job = defs.resolve_implicit_job_def_def_for_assets([key])
    assert job is not None  # every days asset is in the definitions
    create_pools(instance, [pool_name(spec.name)])
    (outcome,) = _execute(
        job,
        instance,
        [key.to_user_string()],
        _asset_step,
        tags={
            MODE_TAG: BACKFILL,
            TABLE_TAG: spec.name,
            RANGE_TAG: rng,
            RANGE_START_TAG: first,
            RANGE_END_TAG: last,
        },
        asset_selection=[key],
        ops_config={
            key.to_python_identifier(): {"config": {"start_us": start_us, "end_us": end_us}}
        },
    )
    return replace(outcome, table=spec.name)


def _day_range(config: Config, start_us: int, end_us: int) -> tuple[str, str]:
    """The first and last day partition ``[start_us, end_us)`` touches, inside the partitions."""
    first_day, today = config.partitions_start, partition_of(datetime.now(UTC))
    days = (
        partition_of(from_micros(start_us)),
        partition_of(from_micros(max(start_us, end_us - 1))),
    )
    # iso days compare as strings
    first, last = (min(max(day, first_day), today) for day in days)
    return first, last


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
    ops_config: Mapping[str, Any] | None = None,
    **selection: Any,
) -> list[TableOutcome]:
    """Run ``job`` over ``selection`` after reclaiming dead runs; one outcome per table, read
    from the events of its step (``step_key(table)``)."""
    reclaim_dead_runs(instance)
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        # Dagster starts only the loggers a run config names (else its own default console)
        run_config={"loggers": {"console": {}}, "ops": dict(ops_config or {})},
        tags={**(tags or {}), **in_process_tags()},
        **selection,
    )
    return _outcomes(result.all_events, names, step_key)


def _outcomes(
    events: Sequence[dg.DagsterEvent], names: Sequence[str], step_key: Callable[[str], str]
) -> list[TableOutcome]:
    """The step's output metadata on success, the reported error type on failure (a crashing
    reconciliation check fails its asset's step), ``run_failure`` for a step that never
    finished."""
    by_step = {step_key(name): name for name in names}
    outcomes = {name: TableOutcome(name, success=False, error_type=RUN_FAILURE) for name in names}
    metadata: dict[str, dict[str, Any]] = {}
    for event in events:
        name = by_step.get(event.step_key or "")
        if name is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            if event.step_output_data.step_output_handle.output_name != check_output(name):
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
