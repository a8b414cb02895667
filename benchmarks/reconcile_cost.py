"""Cost of the reconciliation check against table size: wall time and peak RSS of the check in a
fresh process, on a small and a large table with the same shape (ten days of trades); then the
whole no-op `offload-pipeline run` (a real Dagster run with its check, nothing to offload) on each.

    python benchmarks/reconcile_cost.py [--rows 50000 3000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from offload_throughput import TABLE, core_offload, vm_hwm_kb, write_config

from offload_pipeline.config import load_config
from offload_pipeline.core.handle import open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.reconcile import check_closed_windows
from offload_pipeline.core.window import DAY, MAX_SEQ, MICROS, CursorValue
from offload_pipeline.demo.feed import seed_bulk

SPAN_DAYS = 10
NAMESPACE = "bench"


def build(directory: Path, rows: int) -> Path:
    """A hot tier of ``rows`` trades over ten days, offloaded in one run; its config."""
    directory.mkdir()
    config_path = write_config(directory, batch_rows=500_000)
    end = int(time.time() * MICROS) - 60 * MICROS
    seed_bulk(directory / "hot.db", TABLE, rows, end - SPAN_DAYS * DAY, end)
    assert core_offload(config_path, 500_000, NAMESPACE).rows == rows
    return config_path


def check_child(config_path: Path) -> None:
    """Entry point of the fresh process: one check, its wall time and the process's peak RSS."""
    config = load_config(config_path)
    spec = replace(config.table(TABLE), namespace=NAMESPACE)
    table = open_table(spec, IcebergCatalog(config.catalog))
    started = time.perf_counter()
    check = check_closed_windows(table, 7)
    seconds = time.perf_counter() - started
    assert check.severity == "ok", check
    peak_mb = vm_hwm_kb() / 1024
    # the part that still grows with the table: the hot tier counting the compared days
    assert check.watermark is not None
    end = check.watermark.ts
    started = time.perf_counter()
    with table.source.snapshot(spec) as snap:
        snap.count_by_day((end // DAY - 6) * DAY, CursorValue(end - 1, MAX_SEQ))
    hot_count = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "hot_count": hot_count}))


# the command line in this process, reporting its peak RSS (VmHWM) when it exits
RUN_REPORTING_PEAK = """
import atexit, sys
sys.path.insert(0, sys.argv.pop(1))
from offload_throughput import vm_hwm_kb
atexit.register(lambda: print(f"peak_kb={vm_hwm_kb()}", file=sys.stderr, flush=True))
from offload_pipeline.cli import entry
sys.argv = ["offload-pipeline", *sys.argv[1:]]
entry()
"""


def noop_runs(config_path: Path, repeat: int) -> tuple[float, float]:
    """Medians of ``repeat`` whole no-op `run` processes in a fresh Dagster instance (after one
    run that offloads everything into the config's own namespace): seconds and peak RSS (MB)."""
    home = config_path.parent / "dagster_home"
    home.mkdir()
    root = Path(__file__).resolve().parents[1]
    (home / "dagster.yaml").write_text((root / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "OFFLOAD_PUSHGATEWAY_URL": ""}
    cmd = [sys.executable, "-c", RUN_REPORTING_PEAK, str(Path(__file__).parent)]
    cmd += ["--config", str(config_path), "run"]
    runs = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        out = subprocess.run(
            cmd, env=env, check=True, capture_output=True, text=True, cwd=config_path.parent
        )
        seconds = time.perf_counter() - started
        peak_kb = int(out.stderr.rsplit("peak_kb=", 1)[1].split()[0])
        if attempt:  # the first offloads the table
            runs.append((seconds, peak_kb / 1024))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def measure(config_path: Path, repeat: int) -> tuple[float, float, float, float]:
    """Medians over ``repeat`` fresh processes: check seconds, process seconds, peak RSS (MB),
    seconds of the hot tier's day counts alone (repeated after the check)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--check-child", str(config_path)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(
            {
                **json.loads(out.stdout.strip().splitlines()[-1]),
                "process": time.perf_counter() - started,
            }
        )
    return (
        statistics.median(r["seconds"] for r in runs),
        statistics.median(r["process"] for r in runs),
        statistics.median(r["peak_mb"] for r in runs),
        statistics.median(r["hot_count"] for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 3_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check_child:
        check_child(args.check_child)
        return

    figures = {}
    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        for rows in args.rows:
            started = time.perf_counter()
            config_path = build(Path(tmp) / f"rows{rows}", rows)
            print(f"{rows:,} rows seeded and offloaded in {time.perf_counter() - started:.1f} s")
            figures[rows] = (
                *measure(config_path, args.repeat),
                *noop_runs(config_path, args.repeat),
            )
            seconds, process, peak, hot_count, run_s, run_peak = figures[rows]
            print(
                f"  check {seconds:.3f} s (hot-tier day counts {hot_count:.3f} s), "
                f"whole process {process:.2f} s, peak RSS {peak:.0f} MB; "
                f"no-op `run` {run_s:.2f} s, peak RSS {run_peak:.0f} MB "
                f"(medians of {args.repeat}, load {os.getloadavg()[0]:.1f})"
            )
    small, large = figures[min(figures)], figures[max(figures)]
    print(
        f"ratio {max(figures):,} / {min(figures):,} rows: check {large[0] / small[0]:.2f}x, "
        f"process {large[1] / small[1]:.2f}x, peak RSS {large[2] / small[2]:.2f}x; "
        f"no-op run {large[4] / small[4]:.2f}x, its peak RSS {large[5] / small[5]:.2f}x "
        "(target <= 1.25x)"
    )


if __name__ == "__main__":
    main()
