"""One software-defined asset per configured bronze table.

No ``from __future__ import annotations`` here: Dagster inspects the context annotation at runtime.
"""

import dagster as dg

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core.offload import OffloadResult
from offload_pipeline.core.window import MICROS, iso
from offload_pipeline.defs.hooks import offload_failure_hook, offload_success_hook
from offload_pipeline.defs.jobs import GROUP
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.errors import OffloadError


def pool_name(table: str) -> str:
    """The Dagster pool holding the single writer slot of ``table`` (limit 1 in dagster.yaml)."""
    return f"offload_{table}"


def build_table_asset(spec: TableSpec, run: RunSpec) -> dg.AssetsDefinition:
    """The asset offloading ``spec``: new hot-tier rows appended to its Iceberg table."""

    @dg.asset(
        name=spec.name,
        group_name=GROUP,
        kinds={"iceberg", spec.source.kind},
        pool=pool_name(spec.name),
        hooks={offload_success_hook, offload_failure_hook},
        description=(
            f"Rows of hot-tier table `{spec.source_table}` ({spec.source.kind}) above the "
            f"committed watermark, appended to Iceberg table `{spec.iceberg_identifier}` "
            "exactly once."
        ),
        metadata={
            "iceberg_identifier": spec.iceberg_identifier,
            "source_table": spec.source_table,
            "cursor": f"({spec.cursor.event_time}, {spec.cursor.tie_breaker})",
            "partition": f"{spec.partition_transform}({spec.partition_column})",
        },
        retry_policy=dg.RetryPolicy(
            max_retries=run.max_retries,
            delay=run.retry_delay_seconds,
            backoff=dg.Backoff.EXPONENTIAL,
        ),
    )
    def _offload(
        context: dg.AssetExecutionContext, offload: OffloadResource
    ) -> dg.MaterializeResult:
        try:
            result = offload.offload(spec, run_id=context.run_id)
        except OffloadError as e:
            # config and schema errors fail for good; transient ones go to the RetryPolicy
            raise dg.Failure(
                description=str(e),
                metadata={"error_type": e.error_type, "table": spec.name},
                allow_retries=e.retryable,
            ) from e
        context.log.info(
            f"{spec.name}: {result.rows} rows in {result.commits} commit(s), "
            f"watermark {iso(result.watermark.cursor.ts) if result.watermark else None}"
        )
        return dg.MaterializeResult(metadata=materialization_metadata(result))

    return _offload


def materialization_metadata(result: OffloadResult) -> dict[str, object]:
    """Numeric values the UI plots, plus the window and the committed watermark."""
    window = result.window
    metadata: dict[str, object] = {
        "rows": dg.MetadataValue.int(result.rows),
        "commits": dg.MetadataValue.int(result.commits),
        "duration_seconds": dg.MetadataValue.float(round(result.duration_seconds, 3)),
        "rows_per_second": dg.MetadataValue.float(round(result.rows_per_second, 1)),
        "late_rows": dg.MetadataValue.int(result.late_rows),
        "window_start": iso(window.lo.ts) if window and window.lo else None,
        "window_end": iso(window.hi_ts) if window else None,
        "watermark": iso(result.watermark.cursor.ts) if result.watermark else None,
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
