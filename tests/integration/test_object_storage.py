"""The warehouse on object storage: a real S3 protocol server (moto's, on 127.0.0.1) holds the
Iceberg data and metadata; credentials reach the catalog only as ``${VAR}`` from the environment.

Offload, verify, backfill, status and maintenance (orphans of a killed attempt included) run
against it, SIGKILL at the commit keeps the table exactly once, and an object store that refuses
is ``write_failed`` with the watermark unchanged until the next run recovers.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from offload_pipeline.core.maintenance import referenced_files
from offload_pipeline.core.window import MICROS
from offload_pipeline.errors import WriteFailedError
from tests.conftest import Project, worker_result, write_config
from tests.hot_tiers import DEMO_TABLES
from tests.object_store import (
    ACCESS_KEY_ID,
    CATALOG_PROPERTIES,
    SECRET_ACCESS_KEY,
    S3Server,
    serve_bucket,
)

pytestmark = pytest.mark.integration

BUCKET = "lake"
WAREHOUSE = f"s3://{BUCKET}/warehouse"
TABLE = DEMO_TABLES[0]
DATA = f"warehouse/cold/{TABLE}/data/"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    with serve_bucket(BUCKET, monkeypatch.setenv) as server:
        yield server


@pytest.fixture
def s3_project(tmp_path: Path, s3: S3Server) -> Project:
    """The demo project with its warehouse in the bucket (the SQL catalog stays local)."""
    properties = {"type": "sql", "uri": "sqlite:///catalog.db", "warehouse": WAREHOUSE}
    path = write_config(
        tmp_path,
        catalog={"name": "test", "properties": {**properties, **CATALOG_PROPERTIES}},
        # files of a killed attempt are orphans at once here (a real deployment waits an hour)
        maintenance={"orphan_min_age_seconds": 0},
    )
    return Project(dir=tmp_path, config_path=path)


def _no_credentials(*outputs: str) -> None:
    for text in outputs:
        assert ACCESS_KEY_ID not in text and SECRET_ACCESS_KEY not in text


def _iso(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / MICROS, UTC).isoformat()


def test_the_config_reaches_the_object_store_only_through_the_environment(s3_project, s3):
    properties = s3_project.config.catalog.properties
    assert properties["warehouse"] == WAREHOUSE
    assert properties["s3.endpoint"] == s3.endpoint
    assert properties["s3.secret-access-key"] == SECRET_ACCESS_KEY
    assert SECRET_ACCESS_KEY not in s3_project.config_path.read_text()


def test_offload_verify_backfill_status_and_maintain_on_object_storage(s3_project, s3):
    project = s3_project
    outputs = []

    def cli(*args: str, code: int = 0) -> str:
        done = project.cli(*args)
        outputs.extend((done.stdout, done.stderr))
        assert done.returncode == code, done.stderr[-3000:]
        return done.stdout

    project.seed(3_000)
    cli("run", "--table", TABLE)
    assert s3.keys(BUCKET, DATA), "no data file in the bucket"
    assert project.reconcile().ok and project.iceberg_rows() == 3_000
    # late rows behind the watermark: verify finds them, a backfill of their range repairs them
    wm = project.state().watermark.cursor.ts
    project.seed(300, late_fraction=0.5, watermarks={TABLE: wm})
    cli("run", "--table", TABLE)
    cli("verify", "--table", TABLE, code=1)
    repaired = cli(
        "backfill", "--table", TABLE, "--start", _iso(wm - 3_600 * MICROS), "--end", _iso(wm)
    )
    assert "rows_added=" in repaired and "rows_added=0" not in repaired
    cli("verify", "--table", TABLE)
    status = json.loads(cli("status", "--json", "--table", TABLE))
    (shown,) = status["tables"]
    assert shown["catalog"]["warehouse"] == WAREHOUSE
    assert shown["catalog"]["s3.endpoint"] == s3.endpoint
    assert not {"s3.access-key-id", "s3.secret-access-key"} & shown["catalog"].keys()
    assert shown["iceberg_rows"] == project.hot_count()
    # maintenance compacts the small files in the bucket and keeps every row
    cli("maintain", "--table", TABLE)
    assert project.reconcile().ok and project.iceberg_rows() == project.hot_count()
    _no_credentials(*outputs)


CRASHES = {"commit.before": 0, "commit.after": 1, "commit.before@2": 1}  # commits before the kill
ROWS, BATCH_ROWS = 25_000, 10_000


def test_sigkill_at_the_commit_keeps_the_table_exactly_once_and_orphans_are_removed(s3_project, s3):
    project = s3_project
    assert project.config.run.batch_rows == BATCH_ROWS
    for point, commits in CRASHES.items():
        project.seed(ROWS)
        rows_before = project.iceberg_rows() if project.catalog().load(project.spec()) else 0
        code, _ = worker_result(project.worker(failpoint=point))
        assert code == -signal.SIGKILL, f"{point}: the process was not killed ({code})"
        assert project.iceberg_rows() - rows_before == commits * BATCH_ROWS, point
        assert project.reconcile().ok, point
        code, out = worker_result(project.worker())
        assert code == 0, out
        check = project.reconcile()
        assert check.ok and check.iceberg_rows == project.hot_count(), (point, check)
    # the killed attempts wrote data files no commit references: orphans in the bucket
    table = project.catalog().load(project.spec())
    referenced = referenced_files(table)
    orphans = [k for k in s3.keys(BUCKET, DATA) if f"{BUCKET}/{k}" not in referenced]
    assert orphans, "the killed attempts left no file behind"
    result = project.maintain()
    assert result.orphans_removed >= len(orphans)
    table = project.catalog().load(project.spec())
    referenced = referenced_files(table)
    left = [k for k in s3.keys(BUCKET, DATA) if f"{BUCKET}/{k}" not in referenced]
    assert not left, (left, orphans, result, sorted(referenced))
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == project.hot_count()


def test_an_object_store_that_refuses_is_write_failed_and_the_next_run_recovers(s3_project, s3):
    project = s3_project
    project.seed(2_000)
    project.offload()
    before = project.state().watermark
    project.seed(500)
    project.seed(100, table=DEMO_TABLES[1])
    s3.stop()  # connections to the endpoint are refused from now on
    with pytest.raises(WriteFailedError) as err:
        project.offload()
    assert err.value.retryable
    # a table the catalog has no entry for yet: its location cannot be checked either
    with pytest.raises(WriteFailedError):
        project.offload(DEMO_TABLES[1])
    with pytest.raises(WriteFailedError):
        project.maintain()
    down = project.cli("run", "--table", TABLE)
    assert down.returncode != 0 and "write_failed" in down.stdout + down.stderr
    _no_credentials(down.stdout, down.stderr)

    s3.start()  # the same endpoint is back, with the bucket as it was
    assert project.state().watermark == before  # nothing was committed while it was down
    assert project.offload().rows == 500
    assert project.offload(DEMO_TABLES[1]).rows == 100
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == 2_500
