"""SIGKILL a real offload process at many points; the table must stay exactly once throughout."""

import signal

import pytest

from tests.conftest import worker_result

pytestmark = pytest.mark.integration

# each point is reached in a run of 35k rows committed in 10k-row chunks (4 commits)
CRASH_POINTS = [
    "plan",  # window planned, nothing read
    "read",  # first chunk read, in the reader thread
    "read@3",  # later chunk read while earlier ones are committed
    "append.during+1",  # a millisecond into writing the first data files
    "append.during+25",  # deeper into the first chunk's file writes
    "append.during@3+10",  # inside the third chunk's file writes
    "append.after",  # data files written, nothing committed
    "commit.before",  # just before the first catalog commit
    "commit.after",  # just after the first catalog commit
    "commit.before@3",  # just before a middle commit
    "commit.after@3",  # just after a middle commit
    "commit.after@4",  # just after the last commit, before the run returns
]


def test_sigkill_at_every_point_keeps_the_table_exactly_once(any_project):
    killed = 0
    for point in CRASH_POINTS:
        any_project.seed(35_000)
        before = (
            any_project.state().watermark
            if any_project.catalog().load(any_project.spec())
            else None
        )
        code, _ = worker_result(any_project.worker(failpoint=point))
        assert code == -signal.SIGKILL, f"{point}: the process was not killed ({code})"
        killed += 1
        # right after the crash: either the old or a newer watermark, and exactly its rows
        check = any_project.reconcile()
        assert check.ok, f"after crash at {point}: {check}"
        if before is not None and any_project.catalog().load(any_project.spec()) is not None:
            assert any_project.state().watermark.cursor >= before.cursor, point
        # the next run picks up from whatever was committed and completes the window
        code, out = worker_result(any_project.worker())
        assert code == 0, out
        check = any_project.reconcile()
        assert check.ok, f"after recovery from {point}: {check}"
        assert check.hot_rows == any_project.hot_count() == check.iceberg_rows
    assert killed >= 10


def test_sigkill_during_an_in_process_dagster_run_recovers_on_the_next_run(project):
    """A killed ``offload-pipeline run`` leaves a STARTED run holding its pool slot; the next
    run must reclaim it rather than wait forever, and the data stays exactly once."""
    project.seed(25_000)
    crashed = project.cli("run", "--table", "bronze_trades_binance", failpoint="commit.after")
    assert crashed.returncode == -signal.SIGKILL
    assert project.reconcile().ok
    recovered = project.cli("run", "--table", "bronze_trades_binance", timeout=120)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == 25_000

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]  # the dead run was marked failed
