"""What a config of many small tables costs: loading the definitions, `status --json`, and one
metrics-sensor tick, the latter also right after a cursor reset over a run history.

Generates one SQLite hot tier with --tables tables of 100 rows each, offloads every table once
with the core (so each has an Iceberg table), records --history-runs small cycles in a real
Dagster instance, and pushes to a real Pushgateway; prints medians of --repeat.

    python benchmarks/many_tables.py [--tables 1000] [--history-runs 30] [--repeat 3]
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
from pathlib import Path

import dagster as dg

from offload_pipeline.config import load_config
from offload_pipeline.core.handle import open_table
from offload_pipeline.core.iceberg.catalog import IcebergCatalog
from offload_pipeline.core.offload import offload
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.defs.runs import run_cycle
from offload_pipeline.defs.sensors import FOLD_RUNS_PER_TICK
from offload_pipeline.demo.stack import start_pushgateway

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_overhead import median_seconds, setup  # noqa: E402  (shared with that benchmark)

# the definitions as the code server loads them: config, assets, checks, jobs, resolved repository
LOAD_DEFINITIONS = """
import sys, time
started = time.perf_counter()
from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions
imported = time.perf_counter()
build_definitions(load_config(sys.argv[1])).get_repository_def().get_all_jobs()
print(imported - started, time.perf_counter() - imported)
"""


def load_definitions(config_path: Path) -> tuple[float, float]:
    """(imports, building and resolving) of a fresh process, seconds."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_DEFINITIONS, str(config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    imports, build = out.stdout.split()
    return float(imports), float(build)


def status_json(config_path: Path) -> None:
    cmd = [sys.executable, "-m", "offload_pipeline.cli", "--config", str(config_path)]
    out = subprocess.run([*cmd, "status", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["tables"]


def offload_all(config_path: Path) -> None:
    config = load_config(config_path)
    catalog = IcebergCatalog(config.catalog)
    for spec in config.tables:
        offload(open_table(spec, catalog), config.run)


def record_history(config_path: Path, runs: int, tables_per_run: int) -> None:
    """``runs`` finished cycles over a few tables each: a run history for the fold to read."""
    config = load_config(config_path)
    defs = build_definitions(config)
    names = [spec.name for spec in config.tables]
    with dg.DagsterInstance.get() as instance:
        for i in range(runs):
            start = (i * tables_per_run) % len(names)
            run_cycle(defs, config, instance, names[start : start + tables_per_run])


def bench(tables: int, history_runs: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="offload-many-tables-") as tmp:
        directory = Path(tmp)
        config_path = setup(directory, tables)
        os.environ["OFFLOAD_PUSHGATEWAY_URL"] = ""
        started = time.perf_counter()
        offload_all(config_path)
        elapsed = time.perf_counter() - started
        print(f"{tables} tables offloaded once by the core in {elapsed:.1f} s")
        started = time.perf_counter()
        record_history(config_path, history_runs, tables_per_run=5)
        elapsed = time.perf_counter() - started
        print(f"{history_runs} cycles of 5 tables recorded in {elapsed:.1f} s")

        loads = [load_definitions(config_path) for _ in range(repeat)]
        imports = statistics.median(i for i, _ in loads)
        build = statistics.median(b for _, b in loads)
        print(f"definitions load: {imports:.2f} s imports + {build:.2f} s build")
        status_s = median_seconds(lambda: status_json(config_path), repeat)
        print(f"status --json: {status_s:.2f} s")

        gateway = start_pushgateway(directory / "pg")
        os.environ["OFFLOAD_PUSHGATEWAY_URL"] = gateway.url
        try:
            config = load_config(config_path)
            with dg.DagsterInstance.get() as instance:

                def reset_tick(max_runs: int | None) -> None:
                    report = metrics_tick(instance, config, MetricsState(), max_runs=max_runs)
                    assert report.runs == min(history_runs, max_runs or history_runs)

                whole_s = median_seconds(lambda: reset_tick(None), repeat)
                batch = max(1, history_runs // 3)
                batch_s = median_seconds(lambda: reset_tick(batch), repeat)
                steady = MetricsState()
                metrics_tick(instance, config, steady)
                steady_s = median_seconds(lambda: metrics_tick(instance, config, steady), repeat)
                pushed = metrics_tick(instance, config, steady).pushed
        finally:
            gateway.stop()

    print(f"{tables} tables, medians of {repeat}:")
    print(
        f"  definitions load: {imports + build:.2f} s ({imports:.2f} s imports, "
        f"{build:.2f} s config + build + resolve; target <= 5 s)"
    )
    print(f"  status --json, whole process: {status_s:.2f} s (target <= 10 s)")
    print(
        f"  metrics tick, nothing new to fold: {steady_s:.2f} s (target <= 30 s); one such tick "
        f"pushed {pushed} of {tables + 1} groups"
    )
    print(
        f"  metrics tick after a cursor reset: {whole_s:.2f} s folding all {history_runs} runs, "
        f"{batch_s:.2f} s folding a batch of {batch} (the sensor folds at most "
        f"{FOLD_RUNS_PER_TICK} per tick)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--history-runs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench(args.tables, args.history_runs, args.repeat)


if __name__ == "__main__":
    main()
