"""One SIGINT or SIGTERM stops a writing verb within seconds: never retried, exit 128 + signal,
every table exactly once, the lock and the pool slot free for the next run at once."""

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest

from offload_pipeline.core.window import iso
from offload_pipeline.defs.steps import pool_name
from tests.conftest import write_config
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]
BACKLOG, BATCH_ROWS = 200_000, 10_000
STOP_WITHIN_SECONDS = 10


@pytest.fixture
def backlog(project):
    """A big backlog committed in small chunks, with the default retry policy."""
    write_config(project.dir, run={"batch_rows": BATCH_ROWS, "lock_dir": "locks"})
    assert project.config.run.max_retries == 3  # the default: a retried stop would show
    project.seed(BACKLOG, table=TABLE)
    return project


def start(project, *args, failpoint=None):
    """``offload-pipeline ARGS`` in a subprocess, its log lines collected as they come."""
    env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_FAILPOINT"}
    if failpoint:
        env["OFFLOAD_FAILPOINT"] = failpoint
    proc = subprocess.Popen(
        [sys.executable, "-m", "offload_pipeline.cli", "--config", str(project.config_path), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.log = []
    reader = threading.Thread(target=lambda: proc.log.extend(iter(proc.stderr.readline, "")))
    reader.daemon = True
    reader.start()
    return proc


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stop(proc, signum):
    """Send one signal; the exit code, stdout and log once the process ended, and how long it
    took."""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    took = time.monotonic() - sent
    out = proc.stdout.read()
    time.sleep(0.2)  # the log reader drains the pipe
    return proc.returncode, out, "".join(proc.log), took


def lock_is_free(project, table=TABLE):
    fd = os.open(project.dir / "locks" / f"{table}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def runs():
    with dg.DagsterInstance.get() as instance:
        return instance.get_runs()


def retries(run_id):
    with dg.DagsterInstance.get() as instance:
        records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    return len(records)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_one_signal_stops_run_between_chunks_and_the_next_run_catches_up(backlog, signum):
    proc = start(backlog, "run", "--table", TABLE)
    wait_for(lambda: sum("committed" in line for line in proc.log) >= 2)
    code, out, log, took = stop(proc, signum)

    assert code == 128 + signum, log[-3000:]
    assert took < STOP_WITHIN_SECONDS, f"stopped after {took:.1f} s"
    assert f"{TABLE}: FAILED error_type=run_failure" in log
    assert f"stopped by {signal.Signals(signum).name}" in log
    committed = backlog.iceberg_rows()
    assert 0 < committed < BACKLOG and committed % BATCH_ROWS == 0  # whole chunks only
    assert backlog.reconcile().ok
    assert lock_is_free(backlog)
    (stopped,) = runs()
    assert stopped.status == dg.DagsterRunStatus.FAILURE
    assert retries(stopped.run_id) == 0

    started = time.monotonic()
    again = backlog.cli("run", "--table", TABLE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{TABLE}: ok rows={BACKLOG - committed}" in again.stdout
    assert "Step blocked" not in again.stderr and time.monotonic() - started < 60
    check = backlog.reconcile()
    assert check.ok and check.iceberg_rows == backlog.hot_count() == BACKLOG


def test_a_signal_during_a_retry_delay_ends_the_run_without_the_retry(project):
    """A step waiting out its retry delay reaches no safe point: the process fails its own run,
    frees the pool slot and ends once the grace period is over."""
    write_config(
        project.dir,
        sources={"hot": {"kind": "sqlite", "path": "missing/hot.db"}},
        run={"lock_dir": "locks", "retry": {"max_retries": 3, "delay_seconds": 60}},
    )
    proc = start(project, "run", "--table", TABLE)
    wait_for(lambda: any(retries(run.run_id) for run in runs()))
    code, _, log, took = stop(proc, signal.SIGTERM)

    assert code == 128 + signal.SIGTERM, log[-3000:]
    assert took < STOP_WITHIN_SECONDS, f"stopped after {took:.1f} s"
    (stopped,) = runs()
    assert stopped.status == dg.DagsterRunStatus.FAILURE
    with dg.DagsterInstance.get() as instance:
        pool = instance.event_log_storage.get_concurrency_info(pool_name(TABLE))
    assert stopped.run_id not in pool.active_run_ids
    assert lock_is_free(project)


def test_one_signal_stops_maintain(project):
    project.seed(1_000, table=TABLE)
    project.offload(TABLE)
    proc = start(project, "maintain", "--table", TABLE, failpoint="maintain.locked~3000")
    lock = project.dir / "locks" / f"{TABLE}.lock"
    wait_for(lambda: lock.exists() and lock.read_text() == str(proc.pid))
    code, _, log, took = stop(proc, signal.SIGTERM)

    assert code == 128 + signal.SIGTERM, log[-3000:]
    assert took < STOP_WITHIN_SECONDS
    assert f"{TABLE}: FAILED error_type=run_failure" in log
    assert lock_is_free(project)
    (stopped,) = runs()
    assert stopped.status == dg.DagsterRunStatus.FAILURE
    assert retries(stopped.run_id) == 0
    assert project.state().maintained_at is None  # stopped before its first step


def test_one_signal_stops_backfill_before_its_commit(backlog):
    backlog.offload(TABLE)
    snapshot = backlog.catalog().load(backlog.spec()).current_snapshot().snapshot_id
    wm = backlog.state().watermark.cursor.ts
    start_iso = "2000-01-01T00:00:00"
    data = backlog.dir / "warehouse"
    files_before = sum(1 for _ in data.rglob("*.parquet"))
    proc = start(
        backlog,
        "backfill",
        "--table",
        TABLE,
        "--start",
        start_iso,
        "--end",
        iso(wm),
        failpoint="append.after~3000",
    )
    wait_for(lambda: sum(1 for _ in data.rglob("*.parquet")) > files_before)
    code, _, log, took = stop(proc, signal.SIGINT)

    assert code == 128 + signal.SIGINT, log[-3000:]
    assert took < STOP_WITHIN_SECONDS
    assert f"{TABLE}: FAILED error_type=run_failure" in log
    assert backlog.catalog().load(backlog.spec()).current_snapshot().snapshot_id == snapshot
    assert lock_is_free(backlog)
    assert backlog.reconcile().ok
