"""Inputs that fit the config's grammar but not the deployment: a partition transform that does
not fit its column, a hot tier locked by a writer, a catalog directory that does not exist yet."""

import gc
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from offload_pipeline.core.sources.sqlite import SqliteHotTier
from offload_pipeline.errors import ConfigInvalidError, SourceUnavailableError
from tests.conftest import Project, write_config

pytestmark = pytest.mark.integration

TABLE = "bronze_trades_binance"


def _files(directory):
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_a_partition_transform_that_does_not_fit_its_column_creates_nothing(project, tmp_path):
    project.seed(500)
    bad = dict(yaml_defaults(), partition="day(sequence_number)")
    write_config(tmp_path, defaults=bad)
    with pytest.raises(ConfigInvalidError) as err:
        project.offload()
    message = str(err.value)
    assert message == (
        f"table '{TABLE}': partition: day(sequence_number) does not fit column "
        f"'sequence_number' of type long in source table '{TABLE}' (nothing was created)"
    )
    assert project.catalog().load(project.spec()) is None
    assert _files(tmp_path / "warehouse") == []
    # the corrected config works: no table with the bad spec is in the way
    write_config(tmp_path, defaults=dict(yaml_defaults(), partition="hour(exchange_timestamp)"))
    assert project.offload().rows == 500
    fields = project.catalog().load(project.spec()).spec().fields
    assert [(f.name, str(f.transform)) for f in fields] == [("exchange_timestamp_hour", "hour")]


def test_the_cli_run_refuses_the_partition_without_retrying(project, tmp_path):
    project.seed(100)
    write_config(
        tmp_path,
        defaults=dict(yaml_defaults(), partition="month(symbol)"),
        run={"batch_rows": 10_000, "lock_dir": "locks", "retry": {"max_retries": 3}},
    )
    started = time.monotonic()
    result = project.cli("run", "--table", TABLE)
    assert result.returncode != 0
    assert "month(symbol) does not fit column 'symbol' of type string" in (
        result.stdout + result.stderr
    )
    assert time.monotonic() - started < 60  # not retried with backoff
    assert project.catalog().load(project.spec()) is None


def yaml_defaults():
    return {
        "cursor": {"event_time": "exchange_timestamp", "tie_breaker": "sequence_number"},
        "primary_key": ["sequence_number"],
        "settle_delay_seconds": 0,
    }


WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE bronze_trades_binance SET symbol = symbol WHERE rowid = 1")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


def _delete_journal(project: Project) -> None:
    gc.collect()  # the seeding connection is left open until collected; WAL needs it gone
    conn = sqlite3.connect(project.hot_db, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    finally:
        conn.close()


def _locking_writer(project: Project, seconds: float) -> subprocess.Popen[str]:
    """A real writer process holding an exclusive lock on the hot tier for ``seconds``."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(project.hot_db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
    return writer


def test_a_delete_journal_hot_tier_locked_by_a_writer_is_waited_for(project):
    project.seed(2_000)
    _delete_journal(project)
    writer = _locking_writer(project, 1.5)
    started = time.monotonic()
    result = project.offload()
    waited = time.monotonic() - started
    assert writer.wait(timeout=30) == 0
    assert result.rows == 2_000
    assert waited >= 1.0  # it waited for the writer's commit rather than failing at once
    assert project.reconcile().ok


def test_a_lock_held_past_the_busy_timeout_is_retryable_unavailability(project, monkeypatch):
    project.seed(100)
    _delete_journal(project)
    monkeypatch.setattr(SqliteHotTier, "busy_timeout_ms", 300)
    writer = _locking_writer(project, 5)
    try:
        with pytest.raises(SourceUnavailableError, match="still locked by a writer") as err:
            project.offload()
        assert err.value.retryable and str(project.hot_db) in str(err.value)
    finally:
        writer.kill()
        writer.wait()


def test_the_catalog_and_warehouse_directories_are_created(project, tmp_path):
    project.seed(300)
    properties = {"type": "sql", "uri": "sqlite:///meta/deep/catalog.db", "warehouse": "w/h"}
    write_config(tmp_path, catalog={"name": "test", "properties": properties})
    assert project.offload().rows == 300
    assert (tmp_path / "meta" / "deep" / "catalog.db").is_file()
    assert _files(tmp_path / "w" / "h")


def test_a_catalog_directory_that_cannot_be_created_is_named(project, tmp_path):
    project.seed(10)
    (tmp_path / "blocker").write_text("a file where the catalog's directory should be")
    properties = {"type": "sql", "uri": "sqlite:///blocker/cat/catalog.db", "warehouse": "w"}
    write_config(tmp_path, catalog={"name": "test", "properties": properties})
    with pytest.raises(ConfigInvalidError) as err:
        project.offload()
    assert str(err.value).startswith(
        f"catalog.properties.uri: cannot create directory {tmp_path / 'blocker' / 'cat'}: "
    )
