"""A separate process running one core offload (or, with ``backfill: [start, end]`` in the
kwargs, one backfill): crash and concurrency tests kill or race it.

Usage: offload_worker.py CONFIG TABLE JSON_KWARGS, where the kwargs override fields of the
config's RunSpec (``batch_rows``, ``lock_timeout_seconds``), and ``shared_lock: false`` gives the
process a lock directory of its own, so it races other writers with only the Iceberg commit check
between them. Prints one JSON line; exit 0 on success, 3 on an OffloadError (its error_type is
printed).
"""

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from offload_pipeline.config import RunSpec, load_config
from offload_pipeline.core.backfill import backfill
from offload_pipeline.core.handle import TableHandle, open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.offload import offload
from offload_pipeline.errors import OffloadError


def main() -> int:
    config = load_config(sys.argv[1])
    table = open_table(config.table(sys.argv[2]), IcebergCatalog(config.catalog))
    kwargs = json.loads(sys.argv[3])
    window = kwargs.pop("backfill", None)
    with tempfile.TemporaryDirectory(prefix="offload-worker-lock-") as own:
        if not kwargs.pop("shared_lock", True):
            kwargs["lock_dir"] = Path(own)
        return attempt(table, replace(config.run, **kwargs), window)


def attempt(table: TableHandle, run: RunSpec, window: list[int] | None) -> int:
    try:
        if window is not None:
            done = backfill(table, run, *window)
            print(json.dumps({"rows_written": done.rows_written, "rows_added": done.rows_added}))
            return 0
        result = offload(table, run)
    except OffloadError as e:
        print(json.dumps({"error_type": e.error_type, "message": str(e)}))
        return 3
    wm = result.watermark.cursor if result.watermark else None
    print(json.dumps({"rows": result.rows, "commits": result.commits, "watermark": wm}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
