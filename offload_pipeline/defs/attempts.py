"""Offload attempts read back from the Dagster event log: the durable record metrics derive from.

An *attempt* is one execution of a table's step: a success, a failure, a failure the RetryPolicy
retries, or a step the run never finished because the run itself died (killed process, launch
failure, run timeout). Every counter the pipeline exports is a fold over these.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from offload_pipeline import errors
from offload_pipeline.defs.jobs import BRONZE_JOB, is_incremental

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
    """The attempts of ``tables`` in ``run``, in order; unfinished steps of a dead run count as
    failures (``run_failure``, or ``timeout`` past ``dagster/max_runtime``)."""
    wanted = set(tables) & run_tables(run, tables)
    started: dict[str, float] = {}
    materialized: dict[str, dict[str, float]] = {}
    attempts: list[Attempt] = []
    run_end: float | None = None
    timed_out = False
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED):
            run_end = entry.timestamp
            timed_out |= "maximum runtime" in (entry.message or "").lower()
        if kind == dg.DagsterEventType.RUN_CANCELING:
            timed_out |= "maximum runtime" in (entry.message or "").lower()
        table = event.step_key
        if table not in wanted:
            continue
        if kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED):
            started[table] = entry.timestamp
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.step_materialization_data.materialization.metadata
            materialized[table] = {
                k: float(v.value) for k, v in metadata.items() if k in ("rows", "rows_per_second")
            }
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            facts = materialized.pop(table, {})
            attempts.append(
                Attempt(
                    table,
                    run.run_id,
                    True,
                    started.pop(table, entry.timestamp),
                    entry.timestamp,
                    rows=int(facts.get("rows", 0)),
                    rows_per_second=facts.get("rows_per_second"),
                )
            )
        elif kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY):
            attempts.append(
                Attempt(
                    table,
                    run.run_id,
                    False,
                    started.pop(table, entry.timestamp),
                    entry.timestamp,
                    error_type=_error_type(event),
                )
            )
    if run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        # steps cut off mid-attempt, and steps the dead run never reached
        end = run_end or instance.get_run_stats(run.run_id).end_time or 0.0
        unfinished = set(started) | (wanted - {a.table for a in attempts})
        for table in sorted(unfinished):
            error_type = "timeout" if timed_out else "run_failure"
            attempts.append(
                Attempt(table, run.run_id, False, started.get(table, end), end, error_type)
            )
    return attempts


def finished_runs(
    instance: dg.DagsterInstance, cursors: dict[str, int], limit: int = 200
) -> Iterable[dg.DagsterRun]:
    """Runs that finished since ``cursors`` (storage ids per status event, advanced in place)."""
    for event_type in (
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.RUN_CANCELED,
    ):
        key = event_type.value
        while True:
            result = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(
                    event_type=event_type, after_storage_id=cursors.get(key)
                ),
                limit=limit,
                ascending=True,
            )
            for record in result.records:
                cursors[key] = record.storage_id
                run = instance.get_run_by_id(record.event_log_entry.run_id)
                if run is not None and run.status in _FINISHED:
                    yield run
            if len(result.records) < limit:
                break


def is_cycle(run: dg.DagsterRun) -> bool:
    """An incremental run of the bronze job (scheduled or ``offload-pipeline run``) is one
    cycle."""
    return run.job_name == BRONZE_JOB and is_incremental(run.tags)


def will_retry(run: dg.DagsterRun) -> bool:
    """The daemon will re-execute this failed run: its retry reports the outcome."""
    return run.tags.get("dagster/will_retry") == "true"


def run_tables(run: dg.DagsterRun, tables: Sequence[str]) -> set[str]:
    """The configured tables ``run`` set out to offload (none for a backfill run)."""
    if not is_incremental(run.tags):
        return set()
    if run.asset_selection is not None:
        return {key.to_user_string() for key in run.asset_selection}
    if run.step_keys_to_execute is not None:
        return set(run.step_keys_to_execute)
    return set(tables) if is_cycle(run) else set()


def _error_type(event: dg.DagsterEvent) -> str:
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and "error_type" in user.metadata:
        return str(user.metadata["error_type"].value)
    error = getattr(data, "error", None)
    while error is not None:
        if error.cls_name in _ERROR_TYPE_BY_CLASS:
            return _ERROR_TYPE_BY_CLASS[error.cls_name]
        error = error.cause
    return "unknown"
