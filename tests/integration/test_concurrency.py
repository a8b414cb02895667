"""Two writers of one table: never a duplicate, never a watermark moving backwards."""

import pytest

from tests.conftest import worker_result

pytestmark = pytest.mark.integration


def test_two_writers_without_the_lock_one_loses_with_commit_conflict(
    any_project, tmp_path, monkeypatch
):
    """The Iceberg commit itself refuses the second writer (no silent retry that re-appends)."""
    any_project.seed(20_000)
    # both plan from the same (empty) state: each waits after planning until the other has
    monkeypatch.setenv("OFFLOAD_FAILPOINT_DIR", str(tmp_path / "meet"))
    procs = [
        any_project.worker(failpoint="plan^2", shared_lock=False, batch_rows=50_000)
        for _ in range(2)
    ]
    results = [worker_result(p) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    loser = next(out for code, out in results if code == 3)
    assert loser["error_type"] == "commit_conflict"
    check = any_project.reconcile()
    assert check.ok and check.iceberg_rows == 20_000


def test_two_writers_with_the_lock_serialize(any_project):
    any_project.seed(20_000)
    procs = [any_project.worker(failpoint="plan~1000") for _ in range(2)]
    results = [worker_result(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(out["rows"] for _, out in results) == [0, 20_000]
    check = any_project.reconcile()
    assert check.ok and check.iceberg_rows == 20_000


def test_watermark_never_moves_backwards_under_racing_writers(any_project):
    marks = []
    for _ in range(3):
        any_project.seed(5_000)
        procs = [any_project.worker(shared_lock=False, batch_rows=2_000) for _ in range(3)]
        for proc in procs:
            code, out = worker_result(proc)
            assert code in (0, 3), out
            if code == 3:
                assert out["error_type"] == "commit_conflict"
        marks.append(any_project.state().watermark.cursor)
        assert any_project.reconcile().ok
    assert marks == sorted(marks)
    # whatever raced, the next clean run completes the table exactly
    worker_result(any_project.worker())
    check = any_project.reconcile()
    assert check.ok and check.iceberg_rows == 15_000
