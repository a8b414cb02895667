"""What metrics cost: the push a hook adds to an offload attempt, and one metrics-sensor tick.

Runs a real Pushgateway, a real Dagster instance and real Iceberg tables; prints medians. With
``--storage sqlite postgres`` the same cycles also run on a PostgreSQL-backed instance (the
production profile's dagster.yaml, a throwaway server from scripts/start-postgres.sh).

    python benchmarks/metrics_overhead.py [--tables 3 200] [--repeat 5] [--storage sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import yaml

from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.metrics import MetricsState, metrics_tick, push_last_run
from offload_pipeline.defs.runs import run_cycle
from offload_pipeline.demo.feed import seed
from offload_pipeline.demo.stack import free_port, start_pushgateway

ROOT = Path(__file__).resolve().parents[1]


def setup(directory: Path, tables: int, storage: str = "sqlite") -> Path:
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
    instance_yaml = ROOT / "dagster_home" / "dagster.yaml"
    if storage == "postgres":
        instance_yaml = ROOT / "docker" / "dagster.yaml"
        postgres_storage_env()
    (home / "dagster.yaml").write_text(instance_yaml.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return path


def postgres_storage_env() -> None:
    """A fresh database on the throwaway server for the production dagster.yaml's variables."""
    import psycopg2

    script = ROOT / "scripts" / "start-postgres.sh"
    url = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    parts = urlsplit(url.stdout.strip())
    database = f"bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(url.stdout.strip())
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {database}")
    conn.close()
    os.environ.update(
        DAGSTER_POSTGRES_HOST=parts.hostname or "127.0.0.1",
        DAGSTER_POSTGRES_PORT=str(parts.port or 5432),
        DAGSTER_POSTGRES_DB=database,
        DAGSTER_POSTGRES_USER=parts.username or "postgres",
        DAGSTER_POSTGRES_PASSWORD=parts.password or "unused-on-trust",
    )


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(tables: int, repeat: int, storage: str) -> None:
    with tempfile.TemporaryDirectory(prefix="offload-metrics-bench-") as tmp:
        directory = Path(tmp)
        config_path = setup(directory, tables, storage)
        gateway = start_pushgateway(directory / "pg")
        os.environ["OFFLOAD_PUSHGATEWAY_URL"] = ""  # the cycle itself without hooks pushing
        try:
            config = load_config(config_path)
            with dg.DagsterInstance.get() as instance:
                defs = build_definitions(config)
                cycles = []
                for _ in range(3):  # the first writes 100 rows per table, the others find none
                    started = time.perf_counter()
                    outcomes = run_cycle(defs, config, instance, [])
                    cycles.append(time.perf_counter() - started)
                    assert all(o.success for o in outcomes)
                cycle_s = statistics.median(cycles)
                run_id = instance.get_runs(limit=1)[0].run_id
                # event-log writes of the last cycle: steadier under load than its wall time
                events = len(instance.all_logs(run_id))
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
    print(
        f"{tables} table(s), {storage} instance: one cycle {cycle_s:.2f} s "
        f"({attempt_s * 1000:.0f} ms per attempt; median of 3 cycles: "
        f"{', '.join(f'{c:.2f}' for c in cycles)} s)"
    )
    print(f"  event-log writes of one cycle: {events} ({events / tables:.2f} per table)")
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
    parser.add_argument("--storage", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"])
    args = parser.parse_args()
    for tables in args.tables:
        for storage in args.storage:
            bench(tables, args.repeat, storage)


if __name__ == "__main__":
    main()
