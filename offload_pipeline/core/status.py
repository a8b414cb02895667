"""Where each table stands: source, target, committed watermark, lag and row counts."""

from __future__ import annotations

from typing import Any

from offload_pipeline.config import Config, TableSpec, redact
from offload_pipeline.core.sink import IcebergSink, read_state
from offload_pipeline.core.sources import open_source
from offload_pipeline.core.window import MICROS, iso
from offload_pipeline.errors import OffloadError


def table_status(spec: TableSpec, sink: IcebergSink, config: Config) -> dict[str, Any]:
    """The ``status --json`` entry of one table; unreachable parts are reported, not raised."""
    source = open_source(spec.source)
    entry: dict[str, Any] = {
        "name": spec.name,
        "source": {"kind": spec.source.kind, "uri": source.location(), "table": spec.source_table},
        "iceberg_identifier": spec.iceberg_identifier,
        "catalog": {"name": config.catalog.name, **redact(config.catalog.properties)},
        "watermark": None,
        "source_max": None,
        "lag_seconds": None,
        "iceberg_rows": None,
        "snapshot_id": None,
        "snapshot_time": None,
        "errors": [],
    }
    watermark_ts = None
    try:
        table = sink.load(spec)
        if table is not None:
            state = read_state(table)
            if state.watermark is not None:
                watermark_ts = state.watermark.cursor.ts
                entry["watermark"] = iso(watermark_ts)
            snapshot = table.current_snapshot()
            if snapshot is not None:
                entry["snapshot_id"] = snapshot.snapshot_id
                entry["snapshot_time"] = iso(snapshot.timestamp_ms * 1000)
                summary = snapshot.summary.additional_properties if snapshot.summary else {}
                entry["iceberg_rows"] = int(summary.get("total-records", 0))
            else:
                entry["iceberg_rows"] = 0
    except OffloadError as e:
        entry["errors"].append({"error_type": e.error_type, "message": str(e)})
    try:
        with source.snapshot(spec) as snap:
            source_max = snap.max_event_time()
        entry["source_max"] = iso(source_max)
        if source_max is not None and watermark_ts is not None:
            entry["lag_seconds"] = max(0, source_max - watermark_ts) / MICROS
    except OffloadError as e:
        entry["errors"].append({"error_type": e.error_type, "message": str(e)})
    return entry
