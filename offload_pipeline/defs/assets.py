"""The two assets of each configured bronze table: the offload (unpartitioned: materializing it
offloads now) and its UTC days (materializing a day range backfills it, in one run).

No ``from __future__ import annotations`` here: Dagster inspects the context annotation at runtime.
"""

import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from offload_pipeline.config import RunSpec, TableSpec
from offload_pipeline.core.backfill import BackfillResult
from offload_pipeline.core.offload import OffloadResult
from offload_pipeline.core.window import DAY, MICROS, from_micros, iso, to_micros
from offload_pipeline.defs.checks import check_crashed, reconcile, reconciliation_spec
from offload_pipeline.defs.hooks import offload_hook
from offload_pipeline.defs.jobs import (
    BACKFILL,
    DAYS_GROUP,
    GROUP,
    INCREMENTAL,
    days_key,
    partition_of,
)
from offload_pipeline.defs.metadata import Metadata, MetadataKey
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.steps import pool_name, retry_policy, signed, step_failure
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


def build_table_asset(spec: TableSpec, run: RunSpec, first_day: str) -> dg.AssetsDefinition:
    """The asset offloading ``spec``: new hot-tier rows appended to its Iceberg table, and the
    days they fell on (with any day Iceberg holds that Dagster does not know yet) reported on the
    table's days asset from ``first_day`` on."""

    @dg.asset(
        name=spec.name,
        group_name=GROUP,
        kinds={"iceberg", spec.source.kind},
        pool=pool_name(spec.name),
        hooks={offload_hook},
        check_specs=[reconciliation_spec(spec)],
        freshness_policy=FRESHNESS,
        description=(
            f"Rows of hot-tier table `{spec.source_table}` ({spec.source.kind}) above the "
            f"committed watermark, appended to Iceberg table `{spec.iceberg_identifier}` "
            f"exactly once. Materialize to offload now; backfill days on `{spec.name}_days`."
        ),
        metadata=_table_metadata(spec),
        retry_policy=retry_policy(run),
    )
    @signed
    def _offload(
        context: dg.AssetExecutionContext, offload: OffloadResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        try:
            result = offload.offload(spec, run_id=context.run_id)
            _warn_schema_changes(context, spec, result.schema_changes)
            _report_days(context, offload, spec, first_day, result)
        except OffloadError as e:
            raise step_failure(e, spec.name) from e
        # the run's summary of the offload is this metadata: no log line repeats it
        yield dg.MaterializeResult(metadata=materialization_metadata(result))
        try:
            check = reconcile(offload, spec)
        except Exception as e:  # noqa: BLE001 - a crash of the check fails the table's step
            raise check_crashed(e, spec.name) from e
        yield check

    return _offload


# an exact range inside the run's days (the command line's ``--start``/``--end``); empty: the whole
# days, the open day up to the watermark. A schema built once: a config class is inferred anew
# for every asset that names it, a tenth of the definitions load at 1,000 tables.
BACKFILL_CONFIG = {
    "start_us": dg.Field(dg.Noneable(int), is_required=False, default_value=None),
    "end_us": dg.Field(dg.Noneable(int), is_required=False, default_value=None),
}


def build_days_asset(
    spec: TableSpec, run: RunSpec, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """The day partitions of ``spec``'s Iceberg table: materializing a day range replaces those
    days with the hot tier's rows in one run and one commit."""

    @_asset(
        key=days_key(spec.name),
        group_name=DAYS_GROUP,
        kinds={"iceberg", spec.source.kind},
        pool=pool_name(spec.name),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        config_schema=BACKFILL_CONFIG,
        description=(
            f"The UTC days of Iceberg table `{spec.iceberg_identifier}`: a day is materialized "
            f"when Iceberg holds its rows (offloads of `{spec.name}` report the days they "
            "write). Materializing a day range replaces those days atomically, in one run."
        ),
        metadata=_table_metadata(spec),
        retry_policy=retry_policy(run),
    )
    @signed
    def _days(context: dg.AssetExecutionContext, offload: OffloadResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        start_us, end_us = context.op_config["start_us"], context.op_config["end_us"]
        start = to_micros(window.start) if start_us is None else start_us
        end = to_micros(window.end) if end_us is None else end_us
        exact = end_us is not None
        try:
            backfill = offload.backfill(
                spec, start, end, run_id=context.run_id, up_to_watermark=not exact
            )
        except OffloadError as e:
            raise step_failure(e, spec.name) from e
        _warn_schema_changes(context, spec, backfill.schema_changes)
        context.log.info(
            f"{spec.name}: backfill {backfill.range} replaced {backfill.rows_replaced} rows "
            f"with {backfill.rows_written}"
        )
        return dg.MaterializeResult(metadata=backfill_metadata(backfill))

    return _days


def _table_metadata(spec: TableSpec) -> Metadata:
    return {
        "iceberg_identifier": spec.iceberg_identifier,
        "source_table": spec.source_table,
        "cursor": f"({spec.cursor.event_time}, {spec.cursor.tie_breaker})",
        "partition": f"{spec.partition_transform}({spec.partition_column})",
    }


def _report_days(
    context: dg.AssetExecutionContext,
    offload: OffloadResource,
    spec: TableSpec,
    first_day: str,
    result: OffloadResult,
) -> None:
    """Materialize, on the days asset, each day this offload wrote, and on an instance that knows
    none of the table's days yet each day Iceberg holds: its partition status is then what
    Iceberg holds."""
    key = days_key(spec.name)
    known = context.instance.get_materialized_partitions(key)
    written = _days_written(result)
    end = (to_micros(datetime.now(UTC)) // DAY + 1) * DAY
    first = to_micros(datetime.fromisoformat(first_day).replace(tzinfo=UTC))
    if known:
        # only the days written need counting: a count of every day reads every manifest (and
        # the data itself under month, year or identity partitioning)
        first = max(first, min(written, default=end))
    if first >= end:
        return
    held = offload.days_held(spec, first, end)
    for day, rows in sorted(held.items()):
        partition = partition_of(from_micros(day))
        if day in written or partition not in known:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    partition=partition,
                    description=f"{spec.name}: Iceberg holds {rows} row(s) of {partition}",
                    metadata={MetadataKey.MODE: INCREMENTAL, "iceberg_rows": rows},
                )
            )


def _days_written(result: OffloadResult) -> set[int]:
    """Midnights (µs) of the days this offload's window spans, when it wrote rows."""
    window = result.window
    if not result.rows or window is None:
        return set()
    lo = window.lo.ts if window.lo else window.hi_ts
    return set(range(lo // DAY * DAY, window.hi_ts // DAY * DAY + 1, DAY))


def _warn_schema_changes(
    context: dg.AssetExecutionContext, spec: TableSpec, schema_changes: tuple[str, ...]
) -> None:
    for change in schema_changes:
        context.log.warning(f"{spec.name}: schema evolved: {change}")


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
        "schema_change_details": "; ".join(result.schema_changes) or None,
        "snapshot_id": str(result.snapshot_id) if result.snapshot_id is not None else None,
    }
    return {key: value for key, value in metadata.items() if value is not None}
