"""Sensors with side effects only: the metrics tick and the last-run gauges of dead runs."""

import dagster as dg

from offload_pipeline.defs.eventlog import RUN_FAILURE, TIMEOUT, run_attempts, will_retry
from offload_pipeline.defs.metrics import MetricsState, metrics_tick, push_last_run
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.metrics.budget import PushBudget

METRICS_SENSOR = "offload_metrics_sensor"
RUN_FAILURE_SENSOR = "offload_run_failure_sensor"
TICK_SECONDS = 30
# finished runs folded per tick: after a cursor reset over a long history the counters catch up
# over several ticks, each well inside the sensor's 60 s timeout
FOLD_RUNS_PER_TICK = 100


@dg.sensor(
    name=METRICS_SENSOR,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s: derive the offload counters from the event log and Iceberg, measure "
    "lag, and push every metric (and the heartbeat) to the Pushgateway. Requests no runs.",
)
def offload_metrics_sensor(
    context: dg.SensorEvaluationContext, offload: OffloadResource
) -> dg.SkipReason:
    state = MetricsState.from_cursor(context.cursor)
    report = metrics_tick(context.instance, offload.config, state, max_runs=FOLD_RUNS_PER_TICK)
    context.update_cursor(state.to_cursor())
    return dg.SkipReason(
        f"folded {report.runs} finished run(s); pushed {report.pushed} group(s), "
        f"{report.failed_pushes} failed; deleted {report.deleted_groups} stale group(s)"
    )


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run that died outside the offload code (killed, launch failure, timeout) "
    "fires no hook: push its tables' last-run gauges here.",
)
def offload_run_failure_sensor(
    context: dg.RunFailureSensorContext, offload: OffloadResource
) -> None:
    run = context.dagster_run
    if will_retry(run):
        return  # the retry run reports the outcome
    names = [t.name for t in offload.config.tables]
    died = {
        a.table
        for a in run_attempts(context.instance, run, names)
        if a.error_type in (RUN_FAILURE, TIMEOUT)
    }
    budget = PushBudget()
    for table in sorted(died):
        config = offload.config
        push_last_run(
            config.pushgateway_url, config.pipeline, context.instance, table, run.run_id, budget
        )
