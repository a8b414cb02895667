"""A separate process running one core offload (or, with ``backfill: [start, end]`` in the
kwargs, one backfill): crash and concurrency tests kill or race it.

Usage: offload_worker.py CONFIG TABLE JSON_KWARGS. Prints one JSON line; exit 0 on success,
3 on an OffloadError (its error_type is printed).
"""

import json
import sys

from offload_pipeline.config import load_config
from offload_pipeline.core.backfill import backfill_range
from offload_pipeline.core.offload import offload_table
from offload_pipeline.core.sink import IcebergSink
from offload_pipeline.core.sources import open_source
from offload_pipeline.errors import OffloadError


def main() -> int:
    config = load_config(sys.argv[1])
    spec = config.table(sys.argv[2])
    kwargs = json.loads(sys.argv[3])
    if kwargs.pop("use_lock", True):
        kwargs.setdefault("lock_dir", config.run.lock_dir)
    kwargs.setdefault("batch_rows", config.run.batch_rows)
    backfill = kwargs.pop("backfill", None)
    try:
        if backfill is not None:
            done = backfill_range(
                spec, open_source(spec.source), IcebergSink(config.catalog), *backfill, **kwargs
            )
            print(json.dumps({"rows_written": done.rows_written, "rows_added": done.rows_added}))
            return 0
        result = offload_table(
            spec, open_source(spec.source), IcebergSink(config.catalog), **kwargs
        )
    except OffloadError as e:
        print(json.dumps({"error_type": e.error_type, "message": str(e)}))
        return 3
    wm = result.watermark.cursor if result.watermark else None
    print(json.dumps({"rows": result.rows, "commits": result.commits, "watermark": wm}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
