"""The metadata keys steps write and others read back: one spelling for writers (assets, checks,
the maintenance op, step failures) and readers (the event-log reader, the in-process runner, the
command line)."""

from typing import Any, Final

Metadata = dict[str, Any]
"""metadata as steps hand it to Dagster: ``dg.MetadataValue`` or raw str/int/float values"""


class MetadataKey:
    """Metadata keys with a reader besides the Dagster UI (the rest are written for the UI only)."""

    MODE: Final = "mode"
    """the kind of run that materialized: ``jobs.INCREMENTAL`` or ``jobs.BACKFILL``"""
    ROWS: Final = "rows"
    ROWS_PER_SECOND: Final = "rows_per_second"
    DURATION_SECONDS: Final = "duration_seconds"
    WINDOW_START: Final = "window_start"
    WINDOW_END: Final = "window_end"
    WATERMARK: Final = "watermark"
    ERROR_TYPE: Final = "error_type"
    """the contract ``error_type`` of a failed step or an unfinished check"""
    TABLE: Final = "table"
    TABLE_EXISTS: Final = "table_exists"
    """false when maintenance found no Iceberg table yet"""
    # the figures of a maintenance, named after their ``MaintenanceResult`` fields
    SNAPSHOTS_BEFORE: Final = "snapshots_before"
    SNAPSHOTS_AFTER: Final = "snapshots_after"
    DATA_FILES_BEFORE: Final = "data_files_before"
    DATA_FILES_AFTER: Final = "data_files_after"
    PARTITIONS_COMPACTED: Final = "partitions_compacted"
    FILES_COMPACTED: Final = "files_compacted"
    FILES_WRITTEN: Final = "files_written"
    SNAPSHOTS_EXPIRED: Final = "snapshots_expired"
    ORPHANS_REMOVED: Final = "orphans_removed"
    ORPHAN_BYTES_REMOVED: Final = "orphan_bytes_removed"
    SMALL_FILE_RATIO_BEFORE: Final = "small_file_ratio_before"
    SMALL_FILE_RATIO_AFTER: Final = "small_file_ratio_after"
    DELTA_ROWS: Final = "delta_rows"
    """hot tier minus Iceberg over the reconciled closed windows"""
