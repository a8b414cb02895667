"""What metrics cost: the push a hook adds to an offload attempt, and one metrics-sensor tick.

Runs a real Pushgateway, a real Dagster instance and real Iceberg tables; prints medians.

    python benchmarks/metrics_overhead.py [--tables 3 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml

from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.metrics import MetricsState, metrics_tick, push_last_run
from offload_pipeline.defs.runs import run_cycle
from offload_pipeline.demo.feed import seed
from offload_pipeline.demo.stack import free_port, start_pushgateway

ROOT = Path(__file__).resolve().parents[1]


def setup(directory: Path, tables: int) -> Path:
    names = [f"bronze_trades_{i:03d}" for i in range(tables)]
    seed(directory / "hot.db", names, 100, span_seconds=600)
    doc = {
        "sources": {"hot": {"kind": "sqlite", "path": "hot.db"}},
        "catalog": {
            "name": "bench",
            "properties": {"type": "sql", "uri": "sqlite:///catalog.db", "warehouse": "warehouse"},
        },
        "run": {"lock_dir": "locks", "retry": {"max_retries": 0}},
        "defaults": {
            "cursor": {"event_time": "exchange_timestamp", "tie_breaker": "sequence_number"},
            "primary_key": ["sequence_number"],
            "settle_delay_seconds": 0,
        },
        "tables": [{"name": n} for n in names],
    }
    path = directory / "offload.yaml"
    path.write_text(yaml.safe_dump(doc))
    home = directory / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return path


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(tables: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="offload-metrics-bench-") as tmp:
        directory = Path(tmp)
        config_path = setup(directory, tables)
        gateway = start_pushgateway(directory / "pg")
        os.environ["OFFLOAD_PUSHGATEWAY_URL"] = ""  # the cycle itself without hooks pushing
        try:
            config = load_config(config_path)
            with dg.DagsterInstance.get() as instance:
                started = time.perf_counter()
                outcomes = run_cycle(build_definitions(config), config, instance, [])
                cycle_s = time.perf_counter() - started
                assert all(o.success for o in outcomes)
                run_id = instance.get_runs(limit=1)[0].run_id
                table = config.tables[0].name
                attempt_s = cycle_s / tables
                push_s = median_seconds(
                    lambda: push_last_run(gateway.url, config.pipeline, instance, table, run_id),
                    repeat,
                )
                down = f"http://127.0.0.1:{free_port()}"
                down_s = median_seconds(
                    lambda: push_last_run(down, config.pipeline, instance, table, run_id), repeat
                )

                os.environ["OFFLOAD_PUSHGATEWAY_URL"] = gateway.url
                config = load_config(config_path)
                first = MetricsState()
                first_s = median_seconds(lambda: metrics_tick(instance, config, first), 1)
                steady_s = median_seconds(lambda: metrics_tick(instance, config, first), repeat)
        finally:
            gateway.stop()
    print(f"{tables} table(s): one cycle {cycle_s:.2f} s ({attempt_s * 1000:.0f} ms per attempt)")
    print(
        f"  hook push per attempt: {push_s * 1000:.1f} ms "
        f"({push_s / attempt_s:.1%} of an attempt; target < 50 ms)"
    )
    print(f"  hook push, Pushgateway down: {down_s * 1000:.1f} ms")
    print(
        f"  metrics sensor tick: first {first_s:.2f} s, steady {steady_s:.2f} s "
        "(target < 10 s at 200 tables)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[3, 200])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for tables in args.tables:
        bench(tables, args.repeat)


if __name__ == "__main__":
    main()
