"""Success and failure hooks on every offload asset (not the days assets: backfills are not
offload attempts, their outcome is in the Dagster UI): push the table's last-run gauges at once,
within one push budget per run."""

import logging

import dagster as dg

from offload_pipeline.defs.metrics import push_last_run
from offload_pipeline.metrics.budget import run_budget

log = logging.getLogger(__name__)


@dg.success_hook(required_resource_keys={"offload"})
def offload_success_hook(context: dg.HookContext) -> None:
    """Push the last-run gauges of a table whose attempt succeeded."""
    _push(context)


@dg.failure_hook(required_resource_keys={"offload"})
def offload_failure_hook(context: dg.HookContext) -> None:
    """Push the last-run gauges of a table whose last attempt failed."""
    _push(context)


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
