"""The one reader of the Dagster event log: the attempts of a run, the runs finished since a
cursor, a table's last run with its failure streak and last offload success, and its latest
reconciliation delta (the last two for many tables in a few reads).

An *attempt* is one execution of a table's step: a success, a failure, a failure the RetryPolicy
retries, or a step the run never finished because the run itself died (killed process, launch
failure, run timeout). Every counter and last-run gauge the pipeline exports is read from these.
Attempts come from the step's own stats, so reading one table's last run does not grow with the
number of tables in its run; error types come from the failure events, only where wanted.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import dagster as dg

from offload_pipeline import errors
from offload_pipeline.defs.checks import RECONCILIATION_CHECK
from offload_pipeline.defs.dagster_internals import RunStepKeyStatsSnapshot, StepEventStatus
from offload_pipeline.defs.jobs import BACKFILL, BRONZE_JOB, is_backfill
from offload_pipeline.defs.metadata import MetadataKey
from offload_pipeline.metrics.collect import LastRun

# failed runs since the last success are looked for in at most this many recent runs
CONSECUTIVE_FAILURES_LOOKBACK_RUNS = 100
# the error types of steps a dead run never finished
RUN_FAILURE = "run_failure"
TIMEOUT = "timeout"

_ERROR_TYPE_BY_CLASS = {
    cls.__name__: cls.error_type
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.OffloadError)
}
_FINISHED = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)
_DEAD = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
_STEP_FAILED = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY}
_RUN_ENDING = {
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.RUN_CANCELING,
}


@dataclass(frozen=True)
class Attempt:
    """One finished attempt of one table."""

    table: str
    run_id: str
    success: bool
    started_at: float
    finished_at: float
    error_type: str | None = None
    rows: int = 0
    rows_per_second: float | None = None

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


def run_attempts(
    instance: dg.DagsterInstance, run: dg.DagsterRun, tables: Sequence[str]
) -> list[Attempt]:
    """The attempts of ``tables`` in ``run``, each table's in order, with their error types;
    unfinished steps of a dead run count as failures (``run_failure``, or ``timeout`` past
    ``dagster/max_runtime``)."""
    attempts = _attempts(instance, run, tables)
    untyped = {a.table for a in attempts if a.error_type is None and not a.success}
    if not untyped:
        return attempts
    found = _step_error_types(instance, run.run_id, untyped)
    return [
        replace(a, error_type=next(found[a.table], "unknown"))
        if a.error_type is None and not a.success
        else a
        for a in attempts
    ]


def last_run(instance: dg.DagsterInstance, table: str, run_id: str) -> LastRun | None:
    """The latest attempt of ``table`` in run ``run_id``, with the table's failure streak."""
    return last_runs(instance, {table: run_id}).get(table)


def last_runs(instance: dg.DagsterInstance, run_ids: Mapping[str, str]) -> dict[str, LastRun]:
    """``last_run`` of each table in ``run_ids`` (table -> run id), reading each run and its step
    stats once for all its tables and the latest materializations in one query, so a tick over
    many tables costs a few event-log reads per table, not several."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for table, run_id in run_ids.items():
        by_run[run_id].append(table)
    latest = instance.get_latest_materialization_events([dg.AssetKey(t) for t in run_ids])
    found: dict[str, LastRun] = {}
    for run_id, tables in by_run.items():
        run = instance.get_run_by_id(run_id)
        attempts = _attempts(instance, run, tables) if run is not None else []
        for table in tables:
            own = [a for a in attempts if a.table == table]
            if own:
                entry = latest.get(dg.AssetKey(table))
                found[table] = _last_run(instance, table, own[-1], entry)
    return found


def _last_run(
    instance: dg.DagsterInstance, table: str, last: Attempt, latest: dg.EventLogEntry | None
) -> LastRun:
    """The gauges of ``last``, ``latest`` being the table's latest materialization."""
    if latest is not None and not _written_by_backfill(latest):
        last_success_at: float | None = latest.timestamp
    else:
        last_success_at = last_offload_success(instance, table)
    if last.success:
        # the last success time is the materialization's, for the hooks and the sensor alike
        return LastRun(last.finished_at, True, last.duration_seconds, last.rows, last_success_at, 0)
    streak = failure_streak(instance, table, since=last_success_at or 0.0)
    return LastRun(
        last.finished_at, False, last.duration_seconds, 0, last_success_at, max(streak, 1)
    )


def latest_runs(instance: dg.DagsterInstance, tables: Sequence[str]) -> dict[str, str]:
    """The run of each table's latest ended attempt, among the recent runs (a table without one
    is left out); ``last_run`` of it is what the hooks pushed."""
    wanted = set(tables)
    found: dict[str, str] = {}
    for record in instance.get_run_records(limit=CONSECUTIVE_FAILURES_LOOKBACK_RUNS):
        if not wanted:
            break
        for attempt in _attempts(instance, record.dagster_run, sorted(wanted)):
            found[attempt.table] = attempt.run_id
        wanted -= found.keys()
    return found


def failure_streak(instance: dg.DagsterInstance, table: str, since: float) -> int:
    """Failed runs of ``table`` among the runs created after ``since`` (its last success)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_after=datetime.fromtimestamp(since, tz=UTC)),
        limit=CONSECUTIVE_FAILURES_LOOKBACK_RUNS,
    )
    failed = [
        attempt
        for record in records
        for attempt in _attempts(instance, record.dagster_run, [table])
        if not attempt.success
    ]
    # a run counts once however many of its retries failed: the alert threshold is in cycles
    return len({attempt.run_id for attempt in failed})


def last_offload_success(instance: dg.DagsterInstance, table: str) -> float | None:
    """When ``table`` last materialized from an offload (backfill materializations skipped).

    The latest materialization is nearly always that offload: read it alone first, and the
    lookback only when it was a backfill (every tick asks this of every table)."""
    for limit in (1, CONSECUTIVE_FAILURES_LOOKBACK_RUNS):
        records = instance.fetch_materializations(
            dg.AssetKey(table), limit=limit, ascending=False
        ).records
        for record in records:
            if not _written_by_backfill(record.event_log_entry):
                return record.timestamp
        if len(records) < limit:
            return None
    return None


def _written_by_backfill(entry: dg.EventLogEntry) -> bool:
    """Whether a materialization event was written by a backfill (an offload asset's history from
    before backfills moved to the days assets)."""
    materialization = entry.asset_materialization
    mode = materialization.metadata.get(MetadataKey.MODE) if materialization else None
    return mode is not None and mode.value == BACKFILL


def reconciliation_deltas(
    instance: dg.DagsterInstance, tables: Sequence[str]
) -> dict[str, int | None]:
    """``delta_rows`` of each table's latest reconciliation check (None: never checked), for
    every table in one event-log read."""
    keys = {table: dg.AssetCheckKey(dg.AssetKey(table), RECONCILIATION_CHECK) for table in tables}
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        list(keys.values())
    )
    deltas: dict[str, int | None] = {}
    for table, key in keys.items():
        record = records.get(key)
        event = record.event.dagster_event if record and record.event else None
        evaluation = event.event_specific_data if event else None
        delta = getattr(evaluation, "metadata", {}).get(MetadataKey.DELTA_ROWS)
        deltas[table] = int(delta.value) if delta is not None else None
    return deltas


def finished_runs(
    instance: dg.DagsterInstance,
    cursors: dict[str, int],
    limit: int = 200,
    max_runs: int | None = None,
) -> Iterable[dg.DagsterRun]:
    """Runs that finished since ``cursors`` (storage ids per status event, advanced in place),
    at most ``max_runs`` of them (None: all): the cursors then stop at the last run yielded, so
    the next call goes on from there and a long history is read in bounded batches."""
    left = max_runs
    for event_type in (
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.RUN_CANCELED,
    ):
        key = event_type.value
        while left is None or left > 0:
            page = limit if left is None else min(limit, left)
            result = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(
                    event_type=event_type, after_storage_id=cursors.get(key)
                ),
                limit=page,
                ascending=True,
            )
            for record in result.records:
                cursors[key] = record.storage_id
                run = instance.get_run_by_id(record.event_log_entry.run_id)
                if run is not None and run.status in _FINISHED:
                    left = None if left is None else left - 1
                    yield run
            if len(result.records) < page:
                break


def cycle_running_since(instance: dg.DagsterInstance) -> float | None:
    """Start of the oldest cycle still running (None: none is). A run whose process died stays
    running until it is failed (run monitoring, or the next in-process run reclaims it)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=BRONZE_JOB,
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING],
        )
    )
    starts = [r.start_time for r in records if r.start_time is not None and is_cycle(r.dagster_run)]
    return min(starts) if starts else None


def run_duration(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """Seconds from the run's start to its end (None: it never started or never ended)."""
    stats = instance.get_run_stats(run_id)
    if stats.start_time is None or stats.end_time is None:
        return None
    return max(0.0, stats.end_time - stats.start_time)


def is_cycle(run: dg.DagsterRun) -> bool:
    """A run of the bronze job (scheduled or ``offload-pipeline run``) is one cycle."""
    return run.job_name == BRONZE_JOB and not is_backfill(run.tags)


def will_retry(run: dg.DagsterRun) -> bool:
    """The daemon will re-execute this failed run: its retry reports the outcome."""
    return run.tags.get("dagster/will_retry") == "true"


def run_tables(run: dg.DagsterRun, tables: Sequence[str]) -> set[str]:
    """The configured tables ``run`` set out to offload: its steps named after a table (a days
    asset's step is not); none for a backfill run."""
    if is_backfill(run.tags):
        return set()
    if run.asset_selection is not None:
        return {key.to_user_string() for key in run.asset_selection}
    if run.step_keys_to_execute is not None:
        return set(run.step_keys_to_execute)
    return set(tables) if is_cycle(run) else set()


def error_type_of(event: dg.DagsterEvent) -> str:
    """The contract ``error_type`` of a failed step: the one its failure reported, else the first
    offload error in the exception chain, else ``unknown``."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and MetadataKey.ERROR_TYPE in user.metadata:
        return str(user.metadata[MetadataKey.ERROR_TYPE].value)
    error = getattr(data, "error", None)
    while error is not None:
        if error.cls_name in _ERROR_TYPE_BY_CLASS:
            return _ERROR_TYPE_BY_CLASS[error.cls_name]
        error = error.cause
    return "unknown"


def _attempts(
    instance: dg.DagsterInstance, run: dg.DagsterRun, tables: Sequence[str]
) -> list[Attempt]:
    """The attempts of ``tables`` in ``run`` from their step stats; a failed step's attempts
    carry no error type yet (dead-run ones do). In a run still going, only steps that ended
    count."""
    wanted = sorted(set(tables) & run_tables(run, tables))
    if not wanted:
        return []
    stats = {s.step_key: s for s in instance.get_run_step_stats(run.run_id, step_keys=wanted)}
    settled = run.status in _FINISHED
    attempts: list[Attempt] = []
    unfinished: dict[str, float | None] = {}
    for table in wanted:
        step = stats.get(table)
        if not settled and (step is None or step.status == StepEventStatus.IN_PROGRESS):
            continue  # running or waiting for a retry: its outcome is not known yet
        finished = _finished_attempts(run.run_id, table, step)
        attempts += finished
        if step is not None and step.partial_attempt_start is not None:
            unfinished[table] = step.partial_attempt_start  # cut off mid-attempt
        elif not finished:
            unfinished[table] = None  # never reached
    if run.status in _DEAD and unfinished:
        end, error_type = _run_end(instance, run.run_id)
        for table, started in unfinished.items():
            attempts.append(Attempt(table, run.run_id, False, started or end, end, error_type))
    return attempts


def _finished_attempts(
    run_id: str, table: str, step: RunStepKeyStatsSnapshot | None
) -> list[Attempt]:
    """Every closed attempt of one step: all failures but a final success."""
    if step is None or step.status == StepEventStatus.SKIPPED:
        return []
    attempts = [
        Attempt(table, run_id, False, marker.start_time or 0.0, marker.end_time or 0.0)
        for marker in step.attempts_list
    ]
    if attempts and step.status == StepEventStatus.SUCCESS:
        facts = _materialized(step.materialization_events)
        attempts[-1] = replace(
            attempts[-1],
            success=True,
            rows=int(facts.get(MetadataKey.ROWS, 0)),
            rows_per_second=facts.get(MetadataKey.ROWS_PER_SECOND),
        )
    return attempts


def _materialized(events: Sequence[dg.EventLogEntry]) -> dict[str, float]:
    """Rows and throughput of the step's latest materialization."""
    materialization = events[-1].asset_materialization if events else None
    if materialization is None:
        return {}
    wanted = (MetadataKey.ROWS, MetadataKey.ROWS_PER_SECOND)
    return {
        k: float(v.value)
        for k, v in materialization.metadata.items()
        if k in wanted and isinstance(v.value, int | float)
    }


def _run_end(instance: dg.DagsterInstance, run_id: str) -> tuple[float, str]:
    """When a dead run ended, and the error type of the steps it never finished."""
    end: float | None = None
    timed_out = False
    for entry in instance.all_logs(run_id, of_type=_RUN_ENDING):
        if entry.dagster_event_type != dg.DagsterEventType.RUN_CANCELING:
            end = entry.timestamp
        timed_out |= "maximum runtime" in (entry.message or "").lower()
    end = end or instance.get_run_stats(run_id).end_time or 0.0
    return end, TIMEOUT if timed_out else RUN_FAILURE


def _step_error_types(
    instance: dg.DagsterInstance, run_id: str, tables: set[str]
) -> dict[str, Iterator[str]]:
    """The error types of each table's failed attempts in ``run_id``, in order."""
    found: dict[str, list[str]] = defaultdict(list)
    for entry in instance.all_logs(run_id, of_type=_STEP_FAILED):
        event = entry.dagster_event
        if event is not None and event.step_key in tables:
            found[event.step_key].append(error_type_of(event))
    return {table: iter(found[table]) for table in tables}
