"""``offload-pipeline``: the command line of the pipeline (contract §2).

Verbs call the offload core; only ``run``, ``maintain``, ``backfill``, ``push-metrics`` and ``demo``
touch Dagster. Every verb imports what it needs inside itself (Dagster, pyiceberg, pyarrow), so
``--help`` and the verbs that need neither start fast.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from offload_pipeline import __version__
from offload_pipeline.config import CONFIG_ENV, Config, TableSpec, load_config
from offload_pipeline.core import cancel
from offload_pipeline.core.lock import table_lock
from offload_pipeline.core.window import iso, to_micros
from offload_pipeline.errors import (
    BackfillRefusedError,
    NullCursorError,
    OffloadError,
    first_line,
    scrub,
)
from offload_pipeline.signals import run_stoppable, stopped_exit_code

if TYPE_CHECKING:
    from offload_pipeline.core.handle import TableHandle
    from offload_pipeline.defs.runs import TableOutcome

log = logging.getLogger("offload_pipeline.cli")


class _Context:
    def __init__(self, config_file: str | None, verbose: bool = False) -> None:
        self.config_file = config_file
        self.verbose = verbose

    @cached_property
    def config(self) -> Config:
        try:
            return load_config(self.config_file)
        except OffloadError as e:
            raise click.ClickException(f"{e.error_type}: {e}") from e

    def scrub(self, text: str) -> str:
        """``text`` without the catalog's secrets and the sources' passwords (once the config
        is loaded; before, no secret is known to the process)."""
        config = self.__dict__.get("config")
        if not isinstance(config, Config):
            return text
        passwords = [source.password for source in config.sources.values()]
        return scrub(text, (*config.catalog.secrets, *passwords))

    def tables(self, names: tuple[str, ...]) -> list[TableSpec]:
        config = self.config
        try:
            return [config.table(n) for n in names] if names else list(config.tables)
        except OffloadError as e:
            raise click.ClickException(str(e)) from e

    def handles(self, names: tuple[str, ...]) -> list[TableHandle]:
        from offload_pipeline.core.handle import open_table
        from offload_pipeline.core.iceberg.catalog import IcebergCatalog

        catalog = IcebergCatalog(self.config.catalog)
        return [open_table(spec, catalog) for spec in self.tables(names)]


pass_ctx = click.make_pass_decorator(_Context)
table_option = click.option(
    "--table", "tables", multiple=True, metavar="NAME", help="Only this table (repeatable)."
)


class _Group(click.Group):
    """Verbs whose unexpected errors end in one line (the traceback with ``--verbose``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as e:
            obj = ctx.obj if isinstance(ctx.obj, _Context) else _Context(None)
            if obj.verbose:
                raise
            if isinstance(e, OffloadError):
                line = f"{e.error_type}: {first_line(e)}"
            else:
                line = (
                    f"unknown: {type(e).__name__}: {first_line(e)} (--verbose shows the traceback)"
                )
            raise click.ClickException(obj.scrub(line)) from None


@click.group(cls=_Group)
@click.version_option(__version__)
@click.option(
    "--config",
    "config_file",
    envvar=CONFIG_ENV,
    metavar="PATH",
    help=f"Table config (default: ${CONFIG_ENV}, else ./offload.yaml).",
)
@click.option(
    "--verbose", is_flag=True, help="Print tracebacks of errors (otherwise one line per error)."
)
@click.pass_context
def main(ctx: click.Context, config_file: str | None, verbose: bool) -> None:
    """Offload hot-tier bronze tables into Apache Iceberg, exactly once."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("offload_pipeline").setLevel(logging.INFO)
    ctx.obj = _Context(config_file, verbose)


@main.command()
@click.option("--rows", type=click.IntRange(min=0), required=True, help="Trades per table.")
@table_option
@click.option(
    "--late-fraction",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of rows with an event time behind the table's committed watermark.",
)
@click.option(
    "--tie-fraction",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of rows sharing the previous row's timestamp.",
)
@click.option(
    "--span-seconds",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Spread the rows' event times over this many seconds before now.",
)
@pass_ctx
def seed(
    obj: _Context,
    rows: int,
    tables: tuple[str, ...],
    late_fraction: float,
    tie_fraction: float,
    span_seconds: float,
) -> None:
    """Write synthetic trades into the embedded (SQLite) hot tier."""
    from offload_pipeline.core.iceberg.catalog import IcebergCatalog
    from offload_pipeline.core.iceberg.state import decode_state
    from offload_pipeline.demo.feed import seed as seed_rows

    config = obj.config
    for spec in obj.tables(tables):
        watermark = None
        if late_fraction:
            table = IcebergCatalog(config.catalog).load(spec)
            state = decode_state(table.properties) if table is not None else None
            watermark = state.watermark.cursor.ts if state and state.watermark else None
        seed_rows(
            _sqlite_path(spec),
            [spec.source_table],
            rows,
            span_seconds=span_seconds,
            late_fraction=late_fraction,
            tie_fraction=tie_fraction,
            watermarks={spec.source_table: watermark},
        )
        click.echo(f"{spec.name}: wrote {rows} rows to {_sqlite_path(spec)}")


@main.command()
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Trades per second per table.",
)
@table_option
@pass_ctx
def generate(obj: _Context, rate: float, tables: tuple[str, ...]) -> None:
    """Keep writing trades into the embedded hot tier (the demo feed) until interrupted."""
    from offload_pipeline.demo.feed import generate as generate_rows

    specs = obj.tables(tables)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    by_path: dict[Path, list[str]] = {}
    for spec in specs:
        by_path.setdefault(_sqlite_path(spec), []).append(spec.source_table)
    click.echo(f"writing {rate:g} trades/s into {len(specs)} table(s); Ctrl-C stops")
    threads = [
        threading.Thread(target=generate_rows, args=(path, names, rate, stop), daemon=True)
        for path, names in by_path.items()
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)


@main.command()
@table_option
@pass_ctx
def run(obj: _Context, tables: tuple[str, ...]) -> None:
    """Run one offload cycle now, in this process, recorded in the Dagster instance."""
    from offload_pipeline.defs.metadata import MetadataKey as K
    from offload_pipeline.defs.runs import run_cycle

    def describe(m: dict[str, Any]) -> str:
        return (
            f"ok rows={m.get(K.ROWS)} "
            f"window=({m.get(K.WINDOW_START)}, {m.get(K.WINDOW_END)}] "
            f"watermark={m.get(K.WATERMARK)} seconds={m.get(K.DURATION_SECONDS)}"
        )

    _run_in_process(obj, tables, run_cycle, describe)


@main.command()
@table_option
@pass_ctx
def maintain(obj: _Context, tables: tuple[str, ...]) -> None:
    """Iceberg maintenance now: compact small files, expire old snapshots, remove orphan files.

    Executes the maintenance job in this process, recorded in the Dagster instance; each table's
    step waits for its offload pool slot and writer lock, so it never overlaps an offload."""
    from offload_pipeline.defs.metadata import MetadataKey as K
    from offload_pipeline.defs.runs import run_maintenance

    def describe(m: dict[str, Any]) -> str:
        if not m.get(K.TABLE_EXISTS):
            return "ok, no Iceberg table yet (nothing to maintain)"
        return (
            "ok "
            f"snapshots={m[K.SNAPSHOTS_BEFORE]}->{m[K.SNAPSHOTS_AFTER]} "
            f"data_files={m[K.DATA_FILES_BEFORE]}->{m[K.DATA_FILES_AFTER]} "
            f"small_file_ratio={m[K.SMALL_FILE_RATIO_BEFORE]:.2f}->"
            f"{m[K.SMALL_FILE_RATIO_AFTER]:.2f} "
            f"compacted={m[K.FILES_COMPACTED]} expired={m[K.SNAPSHOTS_EXPIRED]} "
            f"orphans_removed={m[K.ORPHANS_REMOVED]} ({m[K.ORPHAN_BYTES_REMOVED]} bytes) "
            f"seconds={m[K.DURATION_SECONDS]}"
        )

    _run_in_process(obj, tables, run_maintenance, describe)


def _run_in_process(
    obj: _Context,
    tables: tuple[str, ...],
    runner: Callable[..., list[TableOutcome]],
    describe: Callable[[dict[str, Any]], str],
) -> None:
    """Execute ``runner`` (``run_cycle``, ``run_maintenance``) for ``tables`` in this process, in
    the Dagster instance, and print one line per table; a signal stops it at the core's next safe
    point (``signals.py``); exit 1 when any table failed."""
    _default_dagster_home(obj)
    with _startup_uncollected() as started:
        import dagster as dg

        from offload_pipeline.definitions import build_definitions
        from offload_pipeline.defs.dagster_internals import has_log_record_metadata
        from offload_pipeline.defs.runs import fail_own_runs, in_process_definitions

        for handler in logging.getLogger().handlers:
            # the package's records reach the terminal through Dagster's console logger already
            # (dagster.yaml manages the package logger): print each line once
            handler.addFilter(lambda record: not has_log_record_metadata(record))
        config = obj.config
        names = [spec.name for spec in obj.tables(tables)]
        with dg.DagsterInstance.get() as instance:
            defs = in_process_definitions(build_definitions(config), obj.verbose)
            started()
            outcomes = run_stoppable(
                lambda: runner(defs, config, instance, names),
                abandon=lambda: fail_own_runs(instance, f"stopped by {cancel.requested()}"),
            )
    for outcome in outcomes:
        if outcome.success:
            click.echo(f"{outcome.table}: {describe(outcome.metadata)}")
        else:
            message = obj.scrub(outcome.message or "")
            click.echo(
                f"{outcome.table}: FAILED error_type={outcome.error_type} {message}", err=True
            )
    _exit_if_stopped()
    if not all(o.success for o in outcomes):
        sys.exit(1)


@contextmanager
def _startup_uncollected() -> Iterator[Callable[[], None]]:
    """Garbage collection off while a verb imports its libraries and opens the instance; calling
    the yielded function ends that startup: its objects are frozen (no later collection scans
    them again) and collection is back on for the work.

    A startup creates about a million objects (Dagster, pyiceberg, pyarrow, SQLAlchemy) that live
    as long as the process: collecting while they are created, and rescanning them in every later
    full collection, frees nothing. Unfrozen at the end, for a process that goes on (tests)."""
    enabled = gc.isenabled()
    gc.disable()

    def started() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    try:
        yield started
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@main.command(name="push-metrics")
@pass_ctx
def push_metrics(obj: _Context) -> None:
    """One tick of the metrics sensor: derive and push every metric (for setups without the
    daemon). Counters are recomputed from the whole event log; a failed push is logged, exit 0."""
    _default_dagster_home(obj)
    config = obj.config
    if not config.pushgateway_url:
        click.echo("metrics are off (no metrics.pushgateway_url / OFFLOAD_PUSHGATEWAY_URL)")
        return
    with _startup_uncollected() as started:
        import dagster as dg

        from offload_pipeline.defs.metrics import MetricsState, metrics_tick

        with dg.DagsterInstance.get() as instance:
            started()
            report = metrics_tick(instance, config, MetricsState())
    click.echo(
        f"pushed {report.pushed} group(s) to {config.pushgateway_url}, "
        f"{report.failed_pushes} failed; {report.runs} finished run(s) counted"
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object with a 'tables' list.")
@table_option
@pass_ctx
def status(obj: _Context, as_json: bool, tables: tuple[str, ...]) -> None:
    """Show each table's source, Iceberg target, watermark, lag and row count."""
    from offload_pipeline.core.status import shared_sources, table_status

    now_us = to_micros(datetime.now(UTC))
    with shared_sources(obj.handles(tables)) as handles:
        entries = [table_status(handle, now_us) for handle in handles]
    if as_json:
        click.echo(json.dumps({"tables": entries}, indent=2))
        return
    for e in entries:
        lag = "n/a" if e["lag_seconds"] is None else f"{e['lag_seconds']:.0f}s"
        click.echo(
            f"{e['name']}: {e['source']['uri']} ({e['source']['table']}) -> "
            f"{e['iceberg_identifier']}  watermark={e['watermark']}  source_max={e['source_max']}  "
            f"lag={lag}  iceberg_rows={e['iceberg_rows']}  snapshot={e['snapshot_id']}"
        )
        for error in e["errors"]:
            click.echo(f"  error_type={error['error_type']}: {error['message']}", err=True)


@main.command()
@click.option("--table", "table", required=True, help="The table to repair.")
@click.option("--start", required=True, help="Range start, ISO-8601 (UTC if no offset), inclusive.")
@click.option("--end", required=True, help="Range end, ISO-8601 (UTC if no offset), exclusive.")
@pass_ctx
def backfill(obj: _Context, table: str, start: str, end: str) -> None:
    """Re-offload [start, end) of a table and replace that range in Iceberg in one commit.

    Idempotent; repairs late rows, gaps and duplicates in the range; refused for a range reaching
    beyond the watermark. Takes the table's writer lock like a scheduled run. Runs in this process
    as one run of the table's days asset, recorded in the Dagster instance (tags offload/table,
    offload/range), as a day range backfilled from the Dagster UI is.
    """
    from offload_pipeline.defs.metadata import MetadataKey as K
    from offload_pipeline.defs.runs import run_backfill

    (spec,) = obj.tables((table,))
    try:
        start_ts, end_ts = _instant(start, "--start"), _instant(end, "--end")
    except OffloadError as e:
        click.echo(f"{spec.name}: FAILED error_type={e.error_type} {e}", err=True)
        sys.exit(1)

    def runner(defs: Any, config: Config, instance: Any, names: list[str]) -> list[TableOutcome]:
        return [run_backfill(defs, config, instance, spec.name, start_ts, end_ts)]

    def describe(m: dict[str, Any]) -> str:
        changes = m.get("schema_change_details")
        lines = [f"schema evolved: {c}" for c in changes.split("; ")] if changes else []
        lines.append(
            f"ok range={m.get('range')} rows_written={m.get('rows_written')} "
            f"rows_replaced={m.get('rows_replaced')} rows_added={m.get('rows_added')} "
            f"snapshot={m.get('snapshot_id')} seconds={m.get(K.DURATION_SECONDS):.3f}"
        )
        return f"\n{spec.name}: ".join(lines)

    _run_in_process(obj, (spec.name,), runner, describe)


def _exit_if_stopped() -> None:
    """Exit ``128 + signal number`` when a signal stopped the verb (its outcome is printed)."""
    code = stopped_exit_code()
    if code is not None:
        click.echo(f"stopped by {cancel.requested()} (exit {code})", err=True)
        sys.exit(code)


def _instant(text: str, option: str) -> int:
    """Microseconds since the epoch of an ISO-8601 instant (naive means UTC)."""
    try:
        return to_micros(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise BackfillRefusedError(f"{option}: {text!r} is not an ISO-8601 instant") from None


@main.command()
@click.option("--table", "table", required=True, help="The table whose catalog entry was lost.")
@click.option(
    "--metadata-file",
    metavar="LOCATION",
    help="The metadata file to register (default: the newest version at the table's location).",
)
@pass_ctx
def register(obj: _Context, table: str, metadata_file: str | None) -> None:
    """Give a table the catalog lost its entry back, from its newest metadata file.

    With its entry gone (e.g. the catalog database was lost), a table's metadata and data stay at
    its warehouse location, and runs refuse to create a new table over them. This registers the
    table again: its rows, watermark and history are back, and the next run continues from the
    watermark. Takes the table's writer lock; a table the catalog still has is left as it is.
    """
    from offload_pipeline.core.iceberg.state import decode_state

    (handle,) = obj.handles((table,))
    spec = handle.spec
    run = obj.config.run
    try:
        with table_lock(run.lock_dir, spec.name, run.lock_timeout_seconds):
            r = handle.catalog.register(spec, metadata_file)
    except OffloadError as e:
        click.echo(f"{spec.name}: FAILED error_type={e.error_type} {e}", err=True)
        sys.exit(1)
    state = decode_state(r.table.properties)
    watermark = iso(state.watermark.cursor.ts) if state.watermark else None
    verdict = "registered" if r.registered else "ok, already in the catalog"
    click.echo(
        f"{spec.name}: {verdict} {spec.iceberg_identifier} metadata={r.metadata_location} "
        f"watermark={watermark}"
    )


@main.command()
@table_option
@pass_ctx
def verify(obj: _Context, tables: tuple[str, ...]) -> None:
    """Reconcile hot-tier rows up to the watermark with Iceberg: counts, missing, duplicates."""
    from offload_pipeline.core.reconcile import reconcile

    failed = False
    for handle in obj.handles(tables):
        spec = handle.spec
        try:
            r = reconcile(handle)
        except OffloadError as e:
            click.echo(f"{spec.name}: ERROR error_type={e.error_type} {e}", err=True)
            failed = True
            continue
        verdict = "ok" if r.ok else "MISMATCH"
        click.echo(
            f"{spec.name}: {verdict} watermark={iso(r.watermark.ts) if r.watermark else None} "
            f"hot_rows={r.hot_rows} iceberg_rows={r.iceberg_rows} missing_keys={r.missing_keys} "
            f"duplicate_rows={r.duplicate_rows} unexpected_keys={r.unexpected_keys}"
        )
        if r.missing_sample:
            click.echo(f"  first missing keys: {list(r.missing_sample)}")
        if r.null_cursor_rows:
            click.echo(
                f"  null_cursor_rows={r.null_cursor_rows}: hot-tier rows with a NULL cursor column "
                f"are never offloaded; {NullCursorError.remedy}"
            )
        failed |= not r.ok
    if failed:
        sys.exit(1)


@main.command()
@click.option("--rate", type=float, default=20.0, show_default=True, help="Feed trades/s/table.")
@click.option("--port", type=int, default=3000, show_default=True, help="Dagster UI port.")
@click.option("--pushgateway-port", type=int, default=9091, show_default=True)
@click.option("--prometheus-port", type=int, default=9090, show_default=True)
@click.option("--alertmanager-port", type=int, default=9093, show_default=True)
@click.option(
    "--seed-rows",
    type=int,
    default=20_000,
    show_default=True,
    help="Rows per table written once when the hot tier is empty.",
)
@click.option(
    "--docker-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Monitoring configs, prometheus/ and alertmanager/ (default: docker/ beside the config).",
)
@pass_ctx
def demo(
    obj: _Context,
    rate: float,
    port: int,
    pushgateway_port: int,
    prometheus_port: int,
    alertmanager_port: int,
    seed_rows: int,
    docker_dir: Path | None,
) -> None:
    """Seed the embedded hot tier; start the feed, a local Pushgateway, Prometheus and
    Alertmanager (webhook: $OFFLOAD_ALERT_WEBHOOK_URL), and the Dagster UI with the schedule and
    sensors on. The project is the config file's directory: workspace.yaml, docker/ and
    dagster_home/ live there, and the monitoring state under data/monitoring/."""
    from offload_pipeline.demo import stack

    config = obj.config
    project = _project_dir(config)
    docker_dir = docker_dir or project / "docker"
    if not docker_dir.is_dir():
        raise click.ClickException(f"no monitoring configs: {docker_dir} is not a directory")
    home = _default_dagster_home(obj)
    specs = list(config.tables)
    _seed_empty(specs, seed_rows)
    try:
        services = stack.start_monitoring(
            docker_dir,
            project / "data" / "monitoring",
            pushgateway_port=pushgateway_port,
            prometheus_port=prometheus_port,
            alertmanager_port=alertmanager_port,
            webhook_url=os.environ.get("OFFLOAD_ALERT_WEBHOOK_URL"),
        )
    except (stack.MissingBinaryError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from e
    env = {
        **os.environ,
        CONFIG_ENV: str(config.path),
        "DAGSTER_HOME": str(home),
        "OFFLOAD_PUSHGATEWAY_URL": services[0].url,
    }
    exe = [sys.executable, "-m"]
    dagster_dev = [*exe, "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    # each child leads its own process group, so stopping it reaches what it started in turn
    # (Dagster's webserver, daemon and code servers) even when it has to be killed
    children = [
        subprocess.Popen(
            [*exe, "offload_pipeline.cli", "generate", "--rate", str(rate)],
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen(
            [*dagster_dev, "-h", "127.0.0.1"], env=env, cwd=project, start_new_session=True
        ),
    ]
    click.echo(f"Dagster UI:   http://127.0.0.1:{port}  (schedule and metrics sensors on)")
    for service in services:
        click.echo(f"{service.name + ':':<13} {service.ui_url()}")
    click.echo(f"hot tier:     {', '.join(sorted({str(_sqlite_path(s)) for s in specs}))}")
    click.echo("Ctrl-C stops everything")
    try:
        _wait(children)
    finally:
        for service in services:
            service.stop()


def _seed_empty(specs: list[TableSpec], rows: int) -> None:
    """Seed ``rows`` trades into every demo table whose hot-tier file does not exist yet."""
    empty = [s for s in specs if not _sqlite_path(s).exists()]
    if not empty:
        return
    from offload_pipeline.demo.feed import seed

    for spec in empty:
        seed(_sqlite_path(spec), [spec.source_table], rows)
    click.echo(f"seeded {rows} rows into each of {len(empty)} table(s)")


def _wait(children: list[subprocess.Popen[bytes]]) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and all(c.poll() is None for c in children):
        stop.wait(0.5)
    for child in children:
        _signal_group(child, signal.SIGINT)  # what Ctrl-C in a terminal sends the group
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child, signal.SIGKILL)  # whatever of the group outlived the stop
        child.wait()


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:  # the group is gone already
        pass


def _sqlite_path(spec: TableSpec) -> Path:
    if spec.source.kind != "sqlite" or spec.source.path is None:
        raise click.ClickException(f"table '{spec.name}': seeding needs a sqlite source")
    return spec.source.path


def _project_dir(config: Config) -> Path:
    """The directory of the config file: the project root holding workspace.yaml, docker/ and
    dagster_home/ (the package itself never looks for files next to its own code)."""
    return config.path.parent


def _default_dagster_home(obj: _Context) -> Path:
    """``DAGSTER_HOME``, defaulting to ``dagster_home/`` beside the config file; a home without
    an instance config gets that project's ``dagster_home/dagster.yaml``."""
    template = _project_dir(obj.config) / "dagster_home" / "dagster.yaml"
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(template.parent)
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "dagster.yaml").exists() and template.exists():
        shutil.copy(template, path / "dagster.yaml")
    return path


def entry() -> None:
    """The ``offload-pipeline`` executable: ``main``, then an exit that skips the interpreter's
    final garbage collections. Every object dies with the process anyway; scanning the objects of
    the ~2,000 modules a ``run`` imports took longer than the rest of the exit."""
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    entry()
