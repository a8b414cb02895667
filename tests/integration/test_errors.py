"""Bad input, bad data and crashes end in one typed line, never retried in vain, never a secret."""

import os
import sqlite3
from pathlib import Path

import dagster as dg
import pytest

from offload_pipeline.core.window import MAX_MICROS
from tests.conftest import Project, write_config
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration

TABLE = DEMO_TABLES[0]
CATALOG_PASSWORD = "Sup3rSecr@tTail9"


def _project(tmp_path: Path, **table: object) -> Project:
    """One demo table (``table`` overriding its config), retries on, without delay."""
    path = write_config(
        tmp_path,
        tables=[{"name": TABLE, **table}],
        run={
            "batch_rows": 10_000,
            "lock_dir": "locks",
            "retry": {"max_retries": 2, "delay_seconds": 0},
        },
    )
    return Project(dir=tmp_path, config_path=path)


def _add_row(project: Project, **values: object) -> None:
    """Copy the newest hot-tier row under a new sequence number, with ``values`` (SQL) set."""
    values = {"sequence_number": "sequence_number + 1000000", **values}
    with sqlite3.connect(project.hot_db) as conn:
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({TABLE})")]
        select = ", ".join(str(values.get(c, c)) for c in columns)
        conn.execute(
            f"INSERT INTO {TABLE} SELECT {select} FROM {TABLE} "
            "ORDER BY exchange_timestamp DESC LIMIT 1"
        )


def _allow_nulls(project: Project) -> None:
    """Rebuild the hot-tier table without NOT NULL constraints (a schema drift upstream)."""
    with sqlite3.connect(project.hot_db) as conn:
        columns = conn.execute(f"PRAGMA table_info({TABLE})").fetchall()
        ddl = ", ".join(f"{c[1]} {c[2]}" for c in columns)
        conn.execute(f"ALTER TABLE {TABLE} RENAME TO old")
        conn.execute(f"CREATE TABLE {TABLE} ({ddl})")
        conn.execute(f"INSERT INTO {TABLE} SELECT * FROM old")
        conn.execute("DROP TABLE old")


def _failed_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith(f"{TABLE}: FAILED")]
    return line


def _retries(project: Project) -> int:
    """Step restarts recorded by Dagster across every run of the instance."""
    with dg.DagsterInstance.get() as instance:
        return sum(
            len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_RESTARTED))
            for run in instance.get_runs()
        )


def test_a_catalog_password_with_a_raw_at_leaks_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CATALOG_PASSWORD", CATALOG_PASSWORD)
    uri = "postgresql+psycopg2://offload:${CATALOG_PASSWORD}@127.0.0.1:1/catalog"
    catalog = {"name": "test", "properties": {"type": "sql", "uri": uri, "warehouse": "wh"}}
    project = Project(dir=tmp_path, config_path=write_config(tmp_path, catalog=catalog))
    project.cli("seed", "--rows", "10", "--table", TABLE)

    outputs = [project.cli(*verb) for verb in (("run",), ("status",), ("status", "--json"))]
    assert "catalog_unavailable" in _failed_line(outputs[0].stderr)
    # a driver parsing the raw `@` prints the password's tail as the host name
    fragments = [CATALOG_PASSWORD, *CATALOG_PASSWORD.split("@")]
    for result in outputs:
        for fragment in fragments:
            assert fragment not in result.stdout + result.stderr
    home = Path(os.environ["DAGSTER_HOME"])
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert b"catalog_unavailable" in stored  # the failure itself is recorded
    for fragment in fragments:
        assert fragment.encode() not in stored


def test_a_crashing_reconciliation_check_fails_the_run(project):
    project.cli("seed", "--rows", "100", "--table", TABLE)
    ran = project.cli("run", "--table", TABLE, failpoint="reconcile.check!")
    assert ran.returncode == 1
    line = _failed_line(ran.stderr)
    assert "rows committed, but the reconciliation check failed" in line
    assert "failpoint reconcile.check raised" in line
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE  # what Dagster recorded


@pytest.mark.parametrize(
    ("table", "field", "column"),
    [
        ({"primary_key": ["sequence_numbr"]}, "primary_key", "sequence_numbr"),
        (
            {"cursor": {"event_time": "exchange_ts", "tie_breaker": "sequence_number"}},
            "cursor.event_time",
            "exchange_ts",
        ),
    ],
)
def test_a_misspelled_column_is_one_line_in_every_verb_before_anything_runs(
    tmp_path, table, field, column
):
    project = _project(tmp_path, **table)
    project.cli("seed", "--rows", "100", "--table", TABLE)
    expected = f"schema_mismatch: table '{TABLE}': {field}: column '{column}' named in the config"

    ran = project.cli("run")
    assert ran.returncode == 1
    assert expected.replace(": table", " table", 1) in _failed_line(ran.stderr)
    assert project.catalog().load(project.spec(TABLE)) is None  # nothing was created
    assert _retries(project) == 0

    status = project.cli("status")
    assert status.returncode == 0, status.stderr
    assert f"error_type={expected}" in status.stderr

    verified = project.cli("verify")
    assert verified.returncode == 1
    assert "Traceback" not in verified.stderr
    if field == "cursor.event_time":  # the primary key is only read once something is committed
        assert f"ERROR error_type={expected.replace(': table', ' table', 1)}" in verified.stderr


def test_an_event_time_beyond_year_9999_is_refused_before_any_commit(project):
    project.cli("seed", "--rows", "100", "--table", TABLE)
    _add_row(project, exchange_timestamp=MAX_MICROS + 1)
    ran = project.cli("run", "--table", TABLE)
    assert ran.returncode == 1
    line = _failed_line(ran.stderr)
    assert "error_type=schema_mismatch" in line
    assert f"column 'exchange_timestamp': event time {MAX_MICROS + 1} µs lies after 9999" in line
    assert project.iceberg_rows(TABLE) == 0
    status = project.cli("status")
    assert status.returncode == 0 and "lies after 9999" in status.stderr


def _null_in_required(project: Project) -> None:
    assert project.cli("run").returncode == 0  # the Iceberg table requires every column
    _allow_nulls(project)
    _add_row(project, exchange_timestamp="exchange_timestamp + 1", price="NULL")


def _invalid_utf8(project: Project) -> None:
    _add_row(project, symbol="CAST(x'fffe41' AS TEXT)")


def _lock_dir_is_a_file(project: Project) -> None:
    (project.dir / "locks").write_text("")


@pytest.mark.parametrize(
    ("spoil", "table", "error_type", "cause"),
    [
        (_null_in_required, {}, "schema_mismatch", "column 'price': 1 row(s) hold NULL"),
        (_invalid_utf8, {}, "schema_mismatch", "column 'symbol': text that is not valid UTF-8"),
        (_lock_dir_is_a_file, {}, "config_invalid", "run.lock_dir: cannot create the lock file"),
        (lambda _: None, {"partition": "day(kafka_offset)"}, None, "kafka_offset"),
    ],
    ids=["null-in-required", "invalid-utf8", "lock-dir-is-a-file", "transform-vs-type"],
)
def test_causes_retrying_cannot_fix_are_typed_and_not_retried(
    tmp_path, spoil, table, error_type, cause
):
    project = _project(tmp_path, **table)
    project.cli("seed", "--rows", "100", "--table", TABLE)
    spoil(project)
    ran = project.cli("run")
    assert ran.returncode == 1
    line = _failed_line(ran.stderr)
    if error_type is None:  # refused at table creation or at the write, either way typed
        assert "error_type=schema_mismatch" in line or "error_type=config_invalid" in line
    else:
        assert f"error_type={error_type}" in line
    assert cause in line
    assert "Exceeded max_retries" not in ran.stderr
    assert _retries(project) == 0


def test_a_failed_run_prints_one_line_per_error_and_the_stack_only_with_verbose(tmp_path):
    project = _project(tmp_path, primary_key=["sequence_numbr"])
    project.cli("seed", "--rows", "10", "--table", TABLE)
    brief = project.cli("run")
    assert brief.returncode == 1
    assert "Stack Trace" not in brief.stderr and "Traceback" not in brief.stderr
    assert len(brief.stderr.splitlines()) <= 5, brief.stderr
    verbose = project.cli("--verbose", "run")
    assert verbose.returncode == 1
    assert "Stack Trace" in verbose.stderr


def test_an_invalid_cron_is_one_line(tmp_path):
    path = write_config(tmp_path, schedule={"cron": "61 * * * *"})
    ran = Project(dir=tmp_path, config_path=path).cli("run")
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        "Error: config_invalid: schedule: cron: '61 * * * *' is not a cron expression "
        "(5 fields, e.g. '*/15 * * * *')"
    ]
