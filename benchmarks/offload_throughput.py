"""Offload throughput, memory and fixed cost, measured on one data set in one run.

(a) raw read of the window into Arrow, (b) raw pyiceberg append of that Arrow data,
(c) the offload core end to end (plan + read + write + commit); rows/s of each and the ratio
c / serial(a+b), median of --repeat runs. Then the peak RSS of offloading a --rss-rows backlog in a
fresh process, and the fixed cost of `offload-pipeline run` with nothing to offload.

    python benchmarks/offload_throughput.py [--rows 2000000] [--rss-rows 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import yaml

from offload_pipeline.config import load_config
from offload_pipeline.core.handle import TableHandle, open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.iceberg.schema import write_schema
from offload_pipeline.core.offload import OffloadResult, offload
from offload_pipeline.core.sources import open_source
from offload_pipeline.core.window import MICROS, Window
from offload_pipeline.demo.feed import connect, seed_bulk

TABLE = "bronze_trades_binance"


def bulk_load(db: Path, rows: int) -> None:
    """N trades over the last two days (two or three partitions), generated inside SQLite."""
    with connect(db) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    start = int((time.time() - 2 * 86_400) * MICROS)
    seed_bulk(db, TABLE, rows, start, start + 2 * 86_400 * MICROS)


def write_config(directory: Path, batch_rows: int, hot_db: str = "hot.db") -> Path:
    path = directory / f"{Path(hot_db).stem}.yaml"
    doc = {
        "sources": {"hot": {"kind": "sqlite", "path": hot_db}},
        "catalog": {
            "name": "bench",
            "properties": {"type": "sql", "uri": "sqlite:///catalog.db", "warehouse": "warehouse"},
        },
        "run": {"batch_rows": batch_rows, "lock_dir": "locks", "retry": {"max_retries": 0}},
        "defaults": {
            "cursor": {"event_time": "exchange_timestamp", "tie_breaker": "sequence_number"},
            "primary_key": ["sequence_number"],
            "settle_delay_seconds": 0,
        },
        "tables": [{"name": TABLE}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def fresh_target(config_path: Path, namespace: str) -> TableHandle:
    """The table pointed at a new, empty Iceberg table."""
    config = load_config(config_path)
    spec = replace(config.table(TABLE), namespace=namespace)
    return open_table(spec, IcebergCatalog(config.catalog))


def core_offload(config_path: Path, batch_rows: int, namespace: str) -> OffloadResult:
    """One core offload of everything into a new, empty Iceberg table."""
    run = replace(load_config(config_path).run, batch_rows=batch_rows)
    return offload(fresh_target(config_path, namespace), run)


def measure_read(config_path: Path, batch_rows: int) -> tuple[float, pa.Table]:
    spec = load_config(config_path).table(TABLE)
    started = time.perf_counter()
    with open_source(spec.source).snapshot(spec) as snap:
        batches = list(snap.read(Window(None, 2**62), batch_rows))
    return time.perf_counter() - started, pa.Table.from_batches(batches)


def measure_append(config_path: Path, data: pa.Table, batch_rows: int, namespace: str) -> float:
    target = fresh_target(config_path, namespace)
    table, _ = target.catalog.prepare_table(target.spec, data.schema)  # the core's layout
    schema = write_schema(table, data.schema)
    started = time.perf_counter()
    for offset in range(0, data.num_rows, batch_rows):
        table.append(data.slice(offset, batch_rows).cast(schema))
    return time.perf_counter() - started


def measure_core(config_path: Path, batch_rows: int, namespace: str) -> float:
    started = time.perf_counter()
    result = core_offload(config_path, batch_rows, namespace)
    elapsed = time.perf_counter() - started
    assert result.rows > 0
    return elapsed


def peak_rss_child(config_path: Path, batch_rows: int) -> None:
    """Entry point of the RSS subprocess: offload everything, print rows and peak RSS (MB)."""
    result = core_offload(config_path, batch_rows, "rss")
    peak_mb = vm_hwm_kb() / 1024
    arrow_mb = pa.default_memory_pool().max_memory() / 2**20
    print(
        json.dumps(
            {
                "rows": result.rows,
                "seconds": result.duration_seconds,
                "peak_mb": peak_mb,
                "arrow_peak_mb": arrow_mb,
            }
        )
    )


def vm_hwm_kb() -> int:
    """Peak RSS of this process image. Not ru_maxrss: on Linux that keeps the parent's peak
    across fork + exec, which made a large parent inflate the child's figure."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_rss_child(script: str, config_path: Path, batch_rows: int) -> dict[str, float]:
    """Run ``script --rss-child`` in a fresh process (no inherited peak); the JSON it prints."""
    out = subprocess.run(
        [sys.executable, script, "--rss-child", str(config_path), "--batch-rows", str(batch_rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fixed_cost(config_path: Path, directory: Path, repeat: int) -> float:
    env_home = directory / "dagster_home"
    env_home.mkdir(exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    (env_home / "dagster.yaml").write_text((root / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(env_home), "OFFLOAD_PUSHGATEWAY_URL": ""}
    cmd = [sys.executable, "-m", "offload_pipeline.cli", "--config", str(config_path), "run"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # brings the table up to date
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rss-rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        peak_rss_child(args.rss_child, args.batch_rows)
        return

    # the core switches Arrow to jemalloc; the baselines (a) and (b) get the same allocator
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        directory = Path(tmp)
        config_path = write_config(directory, args.batch_rows)
        started = time.perf_counter()
        bulk_load(directory / "hot.db", args.rows)
        print(f"hot tier: {args.rows:,} rows generated in {time.perf_counter() - started:.1f} s")

        reads, appends, cores = [], [], []
        for i in range(args.repeat):
            read_s, data = measure_read(config_path, args.batch_rows)
            append_s = measure_append(config_path, data, args.batch_rows, f"raw{i}")
            del data
            core_s = measure_core(config_path, args.batch_rows, f"core{i}")
            reads.append(read_s)
            appends.append(append_s)
            cores.append(core_s)
            print(
                f"  rep {i + 1}: read {read_s:.2f} s, append {append_s:.2f} s, core {core_s:.2f} s"
            )
        n = args.rows
        read_s, append_s, core_s = (statistics.median(x) for x in (reads, appends, cores))
        serial = read_s + append_s
        print(f"(a) raw read into Arrow      {n / read_s:>12,.0f} rows/s  ({read_s:.2f} s)")
        print(f"(b) raw pyiceberg append     {n / append_s:>12,.0f} rows/s  ({append_s:.2f} s)")
        print(f"    serial (a+b)             {n / serial:>12,.0f} rows/s  ({serial:.2f} s)")
        print(f"(c) offload core end to end  {n / core_s:>12,.0f} rows/s  ({core_s:.2f} s)")
        print(f"    ratio c / serial(a+b)    {serial / core_s:>12.2f}x  (target >= 1.2)")

        if args.rss_rows:
            bulk_load(directory / "hot.db", args.rss_rows)
            rss = run_rss_child(__file__, config_path, args.batch_rows)
            print(
                f"peak RSS, {rss['rows']:,}-row backlog: {rss['peak_mb']:.0f} MB "
                f"(Arrow allocations peak {rss['arrow_peak_mb']:.0f} MB) "
                f"(target <= 512 MB; {rss['rows'] / rss['seconds']:,.0f} rows/s)"
            )

        cost = fixed_cost(config_path, directory, args.repeat)
        print(
            f"fixed cost of `offload-pipeline run`, nothing to offload: {cost:.2f} s "
            "(target <= 3 s)"
        )


if __name__ == "__main__":
    main()
