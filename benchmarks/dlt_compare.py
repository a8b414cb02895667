"""`offload-pipeline run` against dlt and ClickHouse (chdb) on one SQLite backlog, whole processes.

One generated hot tier (--rows trades of the demo table); in each repetition, interleaved: our
`run` as a whole process (fresh Dagster instance, fresh Iceberg table), dlt 1.x (`sql_table`,
pyarrow backend, filesystem destination, Iceberg table format) as a whole process in a virtualenv
of its own, and chdb (in process) inserting the same rows into a local Iceberg table. Medians,
rows/s, ours / dlt, our run's phases from the Iceberg snapshots' commit times, the load average.

    python benchmarks/dlt_compare.py [--rows 4000000] [--repeat 3] [--dlt-venv DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa  # noqa: E402
from offload_throughput import (  # noqa: E402
    TABLE,
    bulk_load,
    measure_append,
    measure_read,
    write_config,
)

from offload_pipeline.config import load_config  # noqa: E402
from offload_pipeline.core.iceberg.catalog import IcebergCatalog  # noqa: E402

# dlt is measured, never depended on: it lives in a virtualenv of its own
DLT_REQUIREMENTS = ("dlt[pyiceberg,filesystem,parquet]==1.*", "sqlalchemy>=2,<3")

# the dlt side, run by the dlt virtualenv's interpreter. Its SQLAlchemy reflection cannot parse the
# hot tier's integer-microsecond TIMESTAMP columns: read them as BIGINT, DECIMAL text as REAL
# (less work than ours: no timestamp or decimal types on the dlt side)
DLT_SCRIPT = """
import sys
import dlt
import sqlalchemy as sa
from dlt.destinations import filesystem
from dlt.sources.sql_database import sql_table

db, table, out, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def adapter(t):
    for col in t.columns:
        name = type(col.type).__name__.upper()
        if "TIMESTAMP" in name or "DATETIME" in name:
            col.type = sa.BigInteger()
        elif "DECIMAL" in name or "NUMERIC" in name:
            col.type = sa.Float()
    return t


source = sql_table(
    credentials=f"sqlite:///{db}", table=table, backend="pyarrow", chunk_size=chunk,
    table_adapter_callback=adapter,
)
pipeline = dlt.pipeline(
    pipeline_name="bench", destination=filesystem(bucket_url=out), dataset_name="bench",
    pipelines_dir=out + "_pipelines",
)
pipeline.run(source, table_format="iceberg")
"""


@dataclass
class Figures:
    """Wall times of one case over the repetitions, with the load average before each."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def add(self, timing: Timing, load: float) -> None:
        self.seconds.append(timing.wall)
        self.cpu.append(timing.cpu)
        self.loads.append(load)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def line(self, name: str, rows: int) -> str:
        each = ", ".join(f"{s:.2f}" for s in self.seconds)
        loads = ", ".join(f"{x:.1f}" for x in self.loads)
        return (
            f"{name:<34} {rows / self.median:>10,.0f} rows/s  {self.median:6.2f} s, "
            f"CPU {statistics.median(self.cpu):.1f} s (runs {each}; load {loads})"
        )


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    """user + system seconds of every thread of the measured process"""


class Stopwatch:
    """Wall and CPU time of a child process (``who=RUSAGE_CHILDREN``) or of this one."""

    def __init__(self, who: int = resource.RUSAGE_CHILDREN) -> None:
        self._who = who
        self._cpu = self._cpu_now()
        self._wall = time.perf_counter()

    def _cpu_now(self) -> float:
        usage = resource.getrusage(self._who)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> Timing:
        return Timing(time.perf_counter() - self._wall, self._cpu_now() - self._cpu)


@dataclass(frozen=True)
class Phases:
    """Our run split by its Iceberg commits: start → first commit, the commits, last → exit."""

    to_first: float
    commits: float
    after_last: float
    count: int


def load1() -> float:
    return os.getloadavg()[0]


def dlt_python(venv: Path) -> Path:
    """The dlt virtualenv's interpreter, created and filled on first use."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import dlt, pyiceberg, sqlalchemy"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating the dlt virtualenv in {venv} (once; --dlt-venv keeps it)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", *DLT_REQUIREMENTS]
    subprocess.run(pip, check=True)
    subprocess.run(probe, check=True)
    return python


def run_ours(config_path: Path, directory: Path, code: Path | None = None) -> tuple[Timing, Phases]:
    """`offload-pipeline run` as a whole process in a fresh Dagster instance, fresh table; with
    ``code``, the package of that source tree instead of the installed one."""
    home = directory / "dagster_home"
    home.mkdir()
    root = Path(__file__).resolve().parents[1]
    (home / "dagster.yaml").write_text((root / "dagster_home" / "dagster.yaml").read_text())
    started_wall = time.time()
    timing = run_cli(config_path, home, code)
    return timing, phases(config_path, started_wall, started_wall + timing.wall)


def run_cli(config_path: Path, home: Path, code: Path | None = None) -> Timing:
    env = {**os.environ, "DAGSTER_HOME": str(home), "OFFLOAD_PUSHGATEWAY_URL": ""}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-m", "offload_pipeline.cli", "--config", str(config_path), "run"]
    watch = Stopwatch()
    # from the run's own directory: `python -m` puts the working directory first on sys.path,
    # which would shadow ``code`` with a source tree the benchmark was started from
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=config_path.parent)
    return watch.stop()


def run_raw(config_path: Path, batch_rows: int, namespace: str) -> tuple[Timing, Timing]:
    """The floor of our write path, in this process: the SQLite source's read of everything
    into Arrow, then pyiceberg appending it into a fresh table of the same layout."""
    watch = Stopwatch(resource.RUSAGE_SELF)
    _, data = measure_read(config_path, batch_rows)
    read = watch.stop()
    watch = Stopwatch(resource.RUSAGE_SELF)
    measure_append(config_path, data, batch_rows, namespace)
    return read, watch.stop()


def phases(config_path: Path, started: float, ended: float) -> Phases:
    config = load_config(config_path)
    table = IcebergCatalog(config.catalog).load(config.table(TABLE))
    assert table is not None, "the run created no Iceberg table"
    # the snapshots of one commit share its time; commits are the distinct times
    commits = sorted({s.timestamp_ms / 1000 for s in table.snapshots()})
    return Phases(commits[0] - started, commits[-1] - commits[0], ended - commits[-1], len(commits))


def run_dlt(python: Path, script: Path, db: Path, out: Path, chunk: int) -> Timing:
    cmd = [str(python), str(script), str(db), TABLE, str(out), str(chunk)]
    watch = Stopwatch()
    subprocess.run(cmd, check=True, capture_output=True, cwd=out.parent)
    return watch.stop()


def run_chdb(db: Path, out: Path) -> Timing:
    """ClickHouse's own SQLite reader and Iceberg writer, the same rows and types as ours
    (timestamps as µs, decimals from their text), into a `day`-partitioned local table."""
    from chdb import session

    cwd = Path.cwd()
    os.chdir(out.parent)  # ClickHouse writes only below its working directory
    watch = Stopwatch(resource.RUSAGE_SELF)
    ch = session.Session()
    try:
        ch.query("SET allow_experimental_insert_into_iceberg = 1")
        ch.query(
            f"""CREATE TABLE trades (
                exchange_timestamp DateTime64(6, 'UTC'), sequence_number Int64, symbol String,
                price Decimal(18, 8), quantity Decimal(18, 8), quote_volume Decimal(18, 8),
                event_time DateTime64(6, 'UTC'), kafka_offset Int64, kafka_partition Int32,
                ingestion_timestamp DateTime64(6, 'UTC'))
            ENGINE = IcebergLocal('{out.name}/')
            PARTITION BY toRelativeDayNum(exchange_timestamp)"""
        )
        micros = "fromUnixTimestamp64Micro(toInt64({}), 'UTC')"
        ch.query(
            f"""INSERT INTO trades SELECT
                {micros.format("exchange_timestamp")}, sequence_number, symbol,
                toDecimal64(price, 8), toDecimal64(quantity, 8), toDecimal64(quote_volume, 8),
                {micros.format("event_time")}, kafka_offset, kafka_partition,
                {micros.format("ingestion_timestamp")}
            FROM sqlite('{db}', '{TABLE}')"""
        )
        timing = watch.stop()
        (count,) = ch.query("SELECT count() FROM trades", "CSV").bytes().split()
    finally:
        ch.close()
        os.chdir(cwd)
    assert int(count) > 0
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--dlt-chunk", type=int, default=250_000, help="dlt's sql_table chunk")
    parser.add_argument("--dlt-venv", type=Path, help="keep dlt's virtualenv here (else a temp)")
    parser.add_argument("--no-dlt", action="store_true")
    parser.add_argument(
        "--before", type=Path, help="also run `run` from this source tree (e.g. a checkout of main)"
    )
    parser.add_argument("--no-chdb", action="store_true")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw read and append")
    args = parser.parse_args()

    # the core switches Arrow to jemalloc; the raw read and append get the same allocator
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    with tempfile.TemporaryDirectory(prefix="offload-dlt-") as tmp:
        directory = Path(tmp)
        python = None
        if not args.no_dlt:
            python = dlt_python(args.dlt_venv or directory / "dlt-venv")
        script = directory / "dlt_load.py"
        script.write_text(DLT_SCRIPT)
        db = directory / "hot.db"
        started = time.perf_counter()
        bulk_load(db, args.rows)
        print(f"hot tier: {args.rows:,} rows generated in {time.perf_counter() - started:.1f} s")

        ours, noop, before, dlt, chdb = (Figures() for _ in range(5))
        reads, appends = Figures(), Figures()
        split: list[Phases] = []
        for i in range(args.repeat):
            rep = directory / f"ours{i}"
            rep.mkdir()
            config_path = write_config(rep, args.batch_rows, hot_db=str(db))
            load = load1()
            timing, phase = run_ours(config_path, rep)
            ours.add(timing, load)
            split.append(phase)
            line = f"  rep {i + 1}: ours {timing.wall:.2f} s (load {load:.1f})"
            load = load1()
            noop.add(run_cli(config_path, rep / "dagster_home"), load)  # all offloaded already
            line += f", no-op {noop.seconds[-1]:.2f} s (load {load:.1f})"
            if args.before is not None:
                rep = directory / f"before{i}"
                rep.mkdir()
                config_path = write_config(rep, args.batch_rows, hot_db=str(db))
                load = load1()
                before.add(run_ours(config_path, rep, args.before)[0], load)
                line += f", before {before.seconds[-1]:.2f} s (load {load:.1f})"
            if python is not None:
                out = directory / f"dlt{i}" / "out"
                out.parent.mkdir()
                load = load1()
                dlt.add(run_dlt(python, script, db, out, args.dlt_chunk), load)
                line += f", dlt {dlt.seconds[-1]:.2f} s (load {load:.1f})"
            if not args.no_chdb:
                load = load1()
                chdb.add(run_chdb(db, directory / f"chdb{i}"), load)
                line += f", chdb {chdb.seconds[-1]:.2f} s (load {load:.1f})"
            if not args.no_raw:
                load = load1()
                read, append = run_raw(config_path, args.batch_rows, f"raw{i}")
                reads.add(read, load)
                appends.add(append, load)
                line += f", raw read {read.wall:.2f} s + append {append.wall:.2f} s"
            print(line, flush=True)

        n = args.rows
        print(ours.line("offload-pipeline run (process)", n))
        print(noop.line("  the same with nothing to offload", n).replace("rows/s", "      "))
        if before.seconds:
            print(before.line("the same, code of --before", n))
            print(f"{'ours / before':<34} {before.median / ours.median:>10.2f}x")
        if dlt.seconds:
            print(dlt.line("dlt sql_table -> Iceberg (process)", n))
            cpu = statistics.median(dlt.cpu) / statistics.median(ours.cpu)
            print(
                f"{'ours / dlt':<34} {dlt.median / ours.median:>10.2f}x  (target >= 4; "
                f"CPU seconds {cpu:.2f}x)"
            )
        if chdb.seconds:
            print(chdb.line("chdb SQLite -> Iceberg (in process)", n))
            print(f"{'ours / chdb':<34} {chdb.median / ours.median:>10.2f}x")
        if reads.seconds:
            print(reads.line("raw read, SQLite source -> Arrow", n))
            print(appends.line("raw pyiceberg append", n))
            floor = noop.median + max(reads.median, appends.median)
            print(
                f"{'floor: no-op run + max(read, append)':<34} {n / floor:>10,.0f} rows/s  "
                f"{floor:6.2f} s; ours is {ours.median / floor:.2f}x the floor"
            )
        med = Phases(
            statistics.median(p.to_first for p in split),
            statistics.median(p.commits for p in split),
            statistics.median(p.after_last for p in split),
            split[0].count,
        )
        print(
            f"our run's phases (medians): start -> first commit {med.to_first:.2f} s, "
            f"{med.count} commits {med.commits:.2f} s "
            f"({med.commits / max(med.count - 1, 1):.2f} s apart), "
            f"last commit -> exit {med.after_last:.2f} s"
        )


if __name__ == "__main__":
    main()
