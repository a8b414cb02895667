"""PostgreSQL source throughput and memory, side by side with the raw ADBC read, in one run.

(a) raw ADBC read of the same rows and columns (``SELECT … ORDER BY`` through
``adbc-driver-postgresql``, batches consumed and dropped): the baseline; (b) the PostgreSQL source
reading the window (REPEATABLE READ snapshot, type conforming); (c) the offload core end to end
into a fresh Iceberg table. Rows/s of each, b/a and c/a, median of --repeat runs. Then the peak RSS
of a fresh process offloading the whole table (bounded by ``batch_rows``, not by the backlog).

    python benchmarks/postgres_throughput.py [--rows 2000000] [--repeat 3] [--url URL]

Without --url (or OFFLOAD_TEST_POSTGRES_URL) a throwaway server is started with
scripts/start-postgres.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import yaml
from offload_throughput import core_offload, run_rss_child, vm_hwm_kb

from offload_pipeline.config import load_config
from offload_pipeline.core.sources import open_source
from offload_pipeline.core.window import Window
from offload_pipeline.feed import postgres_table_ddl

ROOT = Path(__file__).resolve().parents[1]
TABLE = "bronze_trades_binance"


def server_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "start-postgres.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def execute(url: str, *statements: str) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def bulk_load(url: str, rows: int) -> None:
    """N trades over two days, generated inside PostgreSQL."""
    execute(
        url,
        f"DROP TABLE IF EXISTS {TABLE}",
        *postgres_table_ddl(TABLE),
        f"""INSERT INTO {TABLE}
        SELECT ts, g, (ARRAY['BTCUSDT','ETHUSDT','SOLUSDT','XRPUSDT'])[g % 4 + 1],
               round((1000 + random() * 10000)::numeric, 8), round((random() * 10)::numeric, 8),
               round((random() * 10000000)::numeric, 8), ts - interval '1 ms', g, g % 6, ts
        FROM (SELECT g, now() - interval '2 days' + g * (interval '2 days' / {rows}) AS ts
              FROM generate_series(1, {rows}) g) s""",
        f"VACUUM ANALYZE {TABLE}",
    )


def write_config(directory: Path, url: str, batch_rows: int) -> Path:
    rest = url.split("://", 1)[1]
    user, hostport_db = rest.split("@", 1)
    hostport, database = hostport_db.split("/", 1)
    host, port = hostport.rsplit(":", 1)
    doc = {
        "sources": {
            "hot": {
                "kind": "postgres",
                "host": host,
                "port": int(port),
                "database": database,
                "user": user,
            }
        },
        "catalog": {
            "name": "bench",
            "properties": {"type": "sql", "uri": "sqlite:///catalog.db", "warehouse": "warehouse"},
        },
        "run": {"batch_rows": batch_rows, "lock_dir": "locks"},
        "defaults": {
            "cursor": {"event_time": "exchange_timestamp", "tie_breaker": "sequence_number"},
            "primary_key": ["sequence_number"],
            "settle_delay_seconds": 0,
        },
        "tables": [{"name": TABLE}],
    }
    path = directory / "postgres.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def measure_raw(url: str) -> tuple[float, int]:
    """The baseline: the driver alone, same columns as text/number, same order."""
    import adbc_driver_postgresql.dbapi as adbc

    columns = (
        "exchange_timestamp, sequence_number, symbol, price::text, quantity::text, "
        "quote_volume::text, event_time, kafka_offset, kafka_partition, ingestion_timestamp"
    )
    started = time.perf_counter()
    rows = 0
    with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {TABLE} ORDER BY exchange_timestamp, sequence_number")
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
    return time.perf_counter() - started, rows


def measure_source(config_path: Path, batch_rows: int) -> tuple[float, int]:
    spec = load_config(config_path).table(TABLE)
    started = time.perf_counter()
    rows = 0
    with open_source(spec.source).snapshot(spec) as snap:
        for batch in snap.read(Window(None, 2**62), batch_rows):
            rows += batch.num_rows
    return time.perf_counter() - started, rows


def measure_core(config_path: Path, batch_rows: int) -> tuple[float, int]:
    started = time.perf_counter()
    result = core_offload(config_path, batch_rows, f"core_{uuid.uuid4().hex[:8]}")
    return time.perf_counter() - started, result.rows


def peak_rss_child(config_path: Path, batch_rows: int) -> None:
    seconds, rows = measure_core(config_path, batch_rows)
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": vm_hwm_kb() / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("OFFLOAD_TEST_POSTGRES_URL"))
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        peak_rss_child(args.rss_child, args.batch_rows)
        return

    pa.set_memory_pool(pa.jemalloc_memory_pool())  # the allocator the core selects
    admin = server_url(args.url)
    database = f"offload_bench_{uuid.uuid4().hex[:8]}"
    execute(admin, f"CREATE DATABASE {database}")
    url = admin.rsplit("/", 1)[0] + f"/{database}"
    try:
        with tempfile.TemporaryDirectory(prefix="offload-pg-bench-") as tmp:
            config_path = write_config(Path(tmp), url, args.batch_rows)
            started = time.perf_counter()
            bulk_load(url, args.rows)
            print(
                f"hot tier: {args.rows:,} rows in PostgreSQL, {time.perf_counter() - started:.1f} s"
            )
            raws, sources, cores = [], [], []
            for i in range(args.repeat):
                raw_s, n_raw = measure_raw(url)
                source_s, n_source = measure_source(config_path, args.batch_rows)
                core_s, n_core = measure_core(config_path, args.batch_rows)
                assert n_raw == n_source == n_core == args.rows, (n_raw, n_source, n_core)
                raws.append(raw_s)
                sources.append(source_s)
                cores.append(core_s)
                print(
                    f"  rep {i + 1}: raw {raw_s:.2f} s, source {source_s:.2f} s, "
                    f"core {core_s:.2f} s"
                )
            n = args.rows
            raw_s, source_s, core_s = (statistics.median(x) for x in (raws, sources, cores))
            print(f"(a) raw ADBC read            {n / raw_s:>12,.0f} rows/s  ({raw_s:.2f} s)")
            print(f"(b) PostgreSQL source read   {n / source_s:>12,.0f} rows/s  ({source_s:.2f} s)")
            print(f"(c) offload core end to end  {n / core_s:>12,.0f} rows/s  ({core_s:.2f} s)")
            print(f"    ratio b / a              {raw_s / source_s:>12.2f}x")
            print(f"    ratio c / a              {raw_s / core_s:>12.2f}x")
            rss = run_rss_child(__file__, config_path, args.batch_rows)
            print(
                f"peak RSS, {rss['rows']:,}-row backlog in a fresh process: "
                f"{rss['peak_mb']:.0f} MB "
                f"({rss['rows'] / rss['seconds']:,.0f} rows/s)"
            )
    finally:
        execute(admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
