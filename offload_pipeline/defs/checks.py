"""The reconciliation asset check of each bronze table, evaluated in its offload asset's step."""

import dagster as dg

from offload_pipeline.config import TableSpec
from offload_pipeline.core.reconcile import ClosedWindowCheck
from offload_pipeline.defs.metadata import Metadata, MetadataKey
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.errors import NullCursorError, OffloadError, classify, first_line

RECONCILIATION_CHECK = "reconciliation"


def reconciliation_spec(spec: TableSpec) -> dg.AssetCheckSpec:
    """The reconciliation check of ``spec``'s offload asset, evaluated by the asset's own step
    right after its commit (``reconcile``).

    In the asset's step, not a step of its own: a step per table and check costs a pool-free
    step's bookkeeping and four event-log writes per table per cycle, and one check step over
    all tables would not run at all once any table's offload failed. Not blocking: no asset is
    downstream, so blocking would stop nothing and would fail a run whose rows are committed,
    counted as an offload failure the alerts page on.
    """
    return dg.AssetCheckSpec(
        RECONCILIATION_CHECK,
        asset=spec.name,
        blocking=False,
        description=(
            "Hot tier vs Iceberg over closed windows: per-day counts and the keys of the most "
            "recent window. WARN: late rows (backfill them); ERROR: duplicates, missing rows, or "
            "rows with a NULL cursor column."
        ),
    )


def check_output(table: str) -> str:
    """The output the reconciliation of ``table`` yields in its asset's step, next to the
    asset's own (Dagster names a check's output ``AssetCheckSpec.get_python_identifier``)."""
    return f"{table}_{RECONCILIATION_CHECK}"


def reconcile(offload: OffloadResource, spec: TableSpec) -> dg.AssetCheckResult:
    """The hot tier against Iceberg over closed windows (see ``core.reconcile``).

    WARN for late rows (a backfill repairs them), ERROR for duplicates or rows lost, and for
    hot-tier rows with a NULL cursor column (no window holds them).
    """
    try:
        check = offload.check(spec)
    except OffloadError as e:
        # unable to compare is not a mismatch; the offload's own failure reports the cause
        return dg.AssetCheckResult(
            asset_key=spec.name,
            check_name=RECONCILIATION_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"could not reconcile: {e}",
            metadata={MetadataKey.ERROR_TYPE: e.error_type},
        )
    return dg.AssetCheckResult(
        asset_key=spec.name,
        check_name=RECONCILIATION_CHECK,
        passed=check.severity == "ok",
        severity=(
            dg.AssetCheckSeverity.ERROR if check.severity == "error" else dg.AssetCheckSeverity.WARN
        ),
        description=check_description(check),
        metadata=check_metadata(check),
    )


def check_crashed(error: Exception, table: str) -> dg.Failure:
    """The step failure of a check that crashed after the offload committed: the table fails in
    its run (and the run fails), the check records no evaluation (its last delta stands), and no
    retry repeats an offload that succeeded."""
    return dg.Failure(
        description=f"rows committed, but the reconciliation check failed: {first_line(error)}",
        metadata={MetadataKey.ERROR_TYPE: classify(error), MetadataKey.TABLE: table},
        allow_retries=False,
    )


def check_description(check: ClosedWindowCheck) -> str:
    if check.severity == "ok":
        return f"{len(check.days)} day(s) and the recent window match"
    parts = [f"delta {check.delta_rows} row(s) (hot tier minus Iceberg)"]
    if check.duplicate_rows:
        parts.append(f"{check.duplicate_rows} duplicate row(s)")
    if check.unexpected_keys:
        parts.append(f"{check.unexpected_keys} key(s) not in the hot tier")
    if check.null_cursor_rows:
        parts.append(
            f"{check.null_cursor_rows} hot-tier row(s) with a NULL cursor column, never offloaded "
            f"({NullCursorError.remedy})"
        )
    if check.missing_rows:
        parts.append(
            f"{check.missing_rows} missing row(s), {check.late_rows_outstanding} late row(s) "
            "counted and not yet backfilled"
        )
    return "; ".join(parts) + ": backfill the affected days (docs/runbooks)"


def check_metadata(check: ClosedWindowCheck) -> Metadata:
    """Numeric results (``delta_rows`` becomes ``offload_reconciliation_delta_rows``)."""
    mismatched = [d.day for d in check.days if d.delta_rows]
    metadata: Metadata = {
        MetadataKey.DELTA_ROWS: dg.MetadataValue.int(check.delta_rows),
        "missing_rows": dg.MetadataValue.int(check.missing_rows),
        "missing_keys": dg.MetadataValue.int(check.missing_keys),
        "duplicate_rows": dg.MetadataValue.int(check.duplicate_rows),
        "unexpected_keys": dg.MetadataValue.int(check.unexpected_keys),
        "late_rows_outstanding": dg.MetadataValue.int(check.late_rows_outstanding),
        "null_cursor_rows": dg.MetadataValue.int(check.null_cursor_rows),
        "days_checked": dg.MetadataValue.int(len(check.days)),
        "mismatched_days": ", ".join(mismatched) or None,
        "recent_window": check.recent,
    }
    return {key: value for key, value in metadata.items() if value is not None}
