"""One software-defined asset per configured bronze table: an incremental offload, or the backfill
of its partition range.

No ``from __future__ import annotations`` here: Dagster inspects the context annotation at runtime.
"""

import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core.backfill import BackfillResult
from offload_pipeline.core.offload import OffloadResult
from offload_pipeline.core.window import MICROS, iso, to_micros
from offload_pipeline.defs.hooks import offload_failure_hook, offload_success_hook
from offload_pipeline.defs.jobs import BACKFILL, GROUP, INCREMENTAL, is_incremental
from offload_pipeline.defs.metadata import Metadata, MetadataKey
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.steps import pool_name, retry_policy, step_failure
from offload_pipeline.errors import OffloadError

# the same story as the lag alerts (IcebergOffloadLagElevated > 20 min, LagCritical > 30 min)
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=20)
)


def _asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``dg.asset`` without dagster 1.13's BetaWarning for ``backfill_policy``: single-run backfills
    are what a UI range backfill needs, and the warning (printed on every code load) tells an
    operator nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning
        )
        return dg.asset(**kwargs)


def build_table_asset(
    spec: TableSpec, run: RunSpec, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """The asset offloading ``spec``: new hot-tier rows appended to its Iceberg table, or, in a
    backfill, the rows of its partition range replaced."""

    @_asset(
        name=spec.name,
        group_name=GROUP,
        kinds={"iceberg", spec.source.kind},
        pool=pool_name(spec.name),
        hooks={offload_success_hook, offload_failure_hook},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=FRESHNESS,
        description=(
            f"Rows of hot-tier table `{spec.source_table}` ({spec.source.kind}) above the "
            f"committed watermark, appended to Iceberg table `{spec.iceberg_identifier}` "
            "exactly once. A backfill of a day range replaces those days atomically."
        ),
        metadata={
            "iceberg_identifier": spec.iceberg_identifier,
            "source_table": spec.source_table,
            "cursor": f"({spec.cursor.event_time}, {spec.cursor.tie_breaker})",
            "partition": f"{spec.partition_transform}({spec.partition_column})",
        },
        retry_policy=retry_policy(run),
    )
    def _offload(
        context: dg.AssetExecutionContext, offload: OffloadResource
    ) -> dg.MaterializeResult:
        try:
            if is_incremental(context.run.tags):
                result = offload.offload(spec, run_id=context.run_id)
                watermark = iso(result.watermark.cursor.ts) if result.watermark else None
                summary = f"{result.rows} rows in {result.commits} commit(s), watermark {watermark}"
                return _report(
                    context, spec, summary, result.schema_changes, materialization_metadata(result)
                )
            window = context.partition_time_window
            start, end = to_micros(window.start), to_micros(window.end)
            backfill = offload.backfill(spec, start, end, run_id=context.run_id)
            summary = (
                f"backfill {backfill.range} replaced {backfill.rows_replaced} rows "
                f"with {backfill.rows_written}"
            )
            return _report(
                context, spec, summary, backfill.schema_changes, backfill_metadata(backfill)
            )
        except OffloadError as e:
            raise step_failure(e, spec.name) from e

    return _offload


def _report(
    context: dg.AssetExecutionContext,
    spec: TableSpec,
    summary: str,
    schema_changes: tuple[str, ...],
    metadata: Metadata,
) -> dg.MaterializeResult:
    for change in schema_changes:
        context.log.warning(f"{spec.name}: schema evolved: {change}")
    context.log.info(f"{spec.name}: {summary}")
    return dg.MaterializeResult(metadata=metadata)


def materialization_metadata(result: OffloadResult) -> Metadata:
    """Numeric values the UI plots, plus the window and the committed watermark."""
    window = result.window
    metadata: Metadata = {
        MetadataKey.MODE: INCREMENTAL,
        MetadataKey.ROWS: dg.MetadataValue.int(result.rows),
        "commits": dg.MetadataValue.int(result.commits),
        MetadataKey.DURATION_SECONDS: dg.MetadataValue.float(round(result.duration_seconds, 3)),
        MetadataKey.ROWS_PER_SECOND: dg.MetadataValue.float(round(result.rows_per_second, 1)),
        "late_rows": dg.MetadataValue.int(result.late_rows),
        "schema_changes": dg.MetadataValue.int(len(result.schema_changes)),
        "schema_change_details": "; ".join(result.schema_changes) or None,
        MetadataKey.WINDOW_START: iso(window.lo.ts) if window and window.lo else None,
        MetadataKey.WINDOW_END: iso(window.hi_ts) if window else None,
        MetadataKey.WATERMARK: iso(result.watermark.cursor.ts) if result.watermark else None,
        "watermark_sequence": result.watermark.cursor.seq if result.watermark else None,
        "source_max": iso(result.source_max_ts),
        # 64-bit snapshot ids lose precision as JSON numbers in the UI: keep them as text
        "snapshot_id": str(result.snapshot_id) if result.snapshot_id is not None else None,
    }
    if result.lag_seconds is not None:
        metadata["lag_seconds"] = dg.MetadataValue.float(round(result.lag_seconds, 3))
    if result.watermark is not None:
        metadata["watermark_timestamp_seconds"] = dg.MetadataValue.float(
            result.watermark.cursor.ts / MICROS
        )
    return {key: value for key, value in metadata.items() if value is not None}


def backfill_metadata(result: BackfillResult) -> Metadata:
    """What a backfill replaced; ``rows_added`` is what it repaired (negative: duplicates)."""
    metadata: Metadata = {
        MetadataKey.MODE: BACKFILL,
        "range": str(result.range),
        "rows_written": dg.MetadataValue.int(result.rows_written),
        "rows_replaced": dg.MetadataValue.int(result.rows_replaced),
        "rows_added": dg.MetadataValue.int(result.rows_added),
        MetadataKey.DURATION_SECONDS: dg.MetadataValue.float(round(result.duration_seconds, 3)),
        "schema_changes": dg.MetadataValue.int(len(result.schema_changes)),
        "snapshot_id": str(result.snapshot_id) if result.snapshot_id is not None else None,
    }
    return {key: value for key, value in metadata.items() if value is not None}
