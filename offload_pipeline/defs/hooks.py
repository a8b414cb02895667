"""The hook on every offload asset (not the days assets: backfills are not offload attempts, their
outcome is in the Dagster UI): push the table's last-run gauges as soon as its attempt ends,
within one push budget per run."""

import logging
from collections.abc import Sequence

import dagster as dg

from offload_pipeline.defs.metrics import push_last_run
from offload_pipeline.metrics.budget import run_budget

log = logging.getLogger(__name__)

OFFLOAD_HOOK = "offload_metrics_hook"


def _on_step_end(
    context: dg.HookContext, events: Sequence[dg.DagsterEvent]
) -> dg.HookExecutionResult:
    """Push the last-run gauges of a table whose attempt succeeded or whose last attempt failed.

    One hook for both outcomes: a success hook and a failure hook write a skipped-hook event for
    the outcome they do not handle, one event-log write per table per cycle for nothing.
    """
    if not any(event.is_step_success or event.is_step_failure for event in events):
        # an attempt the retry policy repeats: the hook runs after the last one
        return dg.HookExecutionResult(hook_name=OFFLOAD_HOOK, is_skipped=True)
    _push(context)
    return dg.HookExecutionResult(hook_name=OFFLOAD_HOOK, is_skipped=False)


offload_hook = dg.HookDefinition(
    name=OFFLOAD_HOOK, hook_fn=_on_step_end, required_resource_keys={"offload"}
)


def _push(context: dg.HookContext) -> None:
    try:
        config = context.resources.offload.config
        push_last_run(
            config.pushgateway_url,
            config.pipeline,
            context.instance,
            context.op.name,
            context.run_id,
            run_budget(context.run_id),
        )
    except Exception:  # noqa: BLE001 - metrics must never fail the offload they describe
        log.exception("table %s: pushing last-run metrics failed", context.op.name)
