"""Backfills against a real SQLite hot tier and a real Iceberg table: idempotent, repairing,
guarded by the writer lock, and refused where they could do harm."""

import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import EqualTo

from offload_pipeline.core.backfill import backfill
from offload_pipeline.core.lock import table_lock
from offload_pipeline.core.window import MICROS, to_micros
from offload_pipeline.errors import BackfillRefusedError, CommitConflictError

pytestmark = pytest.mark.integration
TABLE = "bronze_trades_binance"
DAY = 86_400 * MICROS


def _midnight(days_ago: int) -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_micros(today - timedelta(days=days_ago))


def _backfill(project, start_ts, end_ts, **run):
    run.setdefault("batch_rows", 500)
    return backfill(project.table(), project.run(**run), start_ts, end_ts)


def _rows(project):
    """Every Iceberg row, in key order, for before/after comparisons."""
    rows = project.catalog().load(project.spec()).scan().to_arrow()
    return rows.sort_by([("sequence_number", "ascending")])


@pytest.fixture
def three_days(project):
    """3 000 rows over the last three days, offloaded; returns the project."""
    project.seed(3_000, span_seconds=3 * 86_400)
    project.offload()
    return project


def test_backfill_twice_leaves_the_same_table_and_watermark(three_days):
    project = three_days
    before, state = _rows(project), project.state()
    start, end = _midnight(2), _midnight(1)

    first = _backfill(project, start, end)
    after_first = _rows(project)
    second = _backfill(project, start, end)

    assert first.rows_written == first.rows_replaced > 0
    assert second.rows_written == second.rows_replaced == first.rows_written
    assert after_first.equals(before) and _rows(project).equals(before)
    assert project.state().watermark == state.watermark
    assert project.state().rows_total == state.rows_total
    # each backfill is one commit: one delete snapshot plus its appends, sharing the run id
    snapshots = project.catalog().load(project.spec()).snapshots()
    summaries = [s.summary.additional_properties for s in snapshots]
    assert sum(s.get("offload.run-id") == second.run_id for s in summaries) >= 2
    assert all(
        s.get("offload.backfill") == str(second.range)
        for s in summaries
        if s.get("offload.run-id") == second.run_id
    )
    assert project.reconcile().ok


def test_backfill_repairs_late_rows_and_counts_them_repaired(three_days):
    project = three_days
    wm = project.state().watermark.cursor.ts
    project.seed(400, late_fraction=0.5, watermarks={TABLE: wm})
    project.offload()
    late = project.state().late_rows_total
    assert late > 100 and project.reconcile().missing_keys == late

    result = _backfill(project, wm - 3_600 * MICROS, wm)

    assert result.rows_added == late
    assert project.reconcile().ok
    assert project.state().late_rows_repaired_total == late
    assert project.state().late_rows_outstanding == 0


def test_backfill_repairs_duplicates_and_gaps(three_days):
    project = three_days
    iceberg = project.catalog().load(project.spec())
    rows = iceberg.scan().to_arrow()
    start = _midnight(1)
    in_day = rows.filter(pc.greater_equal(rows["exchange_timestamp"].cast("int64"), start))
    iceberg.append(in_day.slice(0, 25))  # duplicates
    victim = in_day["sequence_number"][30].as_py()
    iceberg.delete(EqualTo("sequence_number", victim))  # a gap
    broken = project.reconcile()
    assert broken.duplicate_rows == 25 and broken.missing_keys == 1

    result = _backfill(project, start, project.state().watermark.cursor.ts)

    assert result.rows_added == 1 - 25
    assert project.reconcile().ok
    assert _rows(project).num_rows == project.hot_count()


def test_a_range_beyond_the_watermark_is_refused_and_nothing_changes(three_days):
    project = three_days
    before = len(project.catalog().load(project.spec()).snapshots())
    wm = project.state().watermark.cursor.ts
    with pytest.raises(BackfillRefusedError, match="reaches beyond the committed watermark"):
        _backfill(project, _midnight(1), wm + 1)
    with pytest.raises(BackfillRefusedError, match="is empty"):
        _backfill(project, _midnight(1), _midnight(1))
    assert len(project.catalog().load(project.spec()).snapshots()) == before


def test_a_table_without_a_watermark_refuses_any_backfill(project):
    project.seed(10)
    with pytest.raises(BackfillRefusedError, match=r"watermark \(none yet\)"):
        _backfill(project, _midnight(3), _midnight(2))


def test_rows_the_hot_tier_no_longer_holds_are_never_dropped(three_days):
    project = three_days
    start, end = _midnight(2), _midnight(1)
    with sqlite3.connect(project.hot_db) as conn:  # retention removed the first hours of the day
        conn.execute(f"DELETE FROM {TABLE} WHERE exchange_timestamp < ?", (start + DAY // 4,))
    before = _rows(project)
    with pytest.raises(BackfillRefusedError, match="would drop .* row.* no longer holds"):
        _backfill(project, start, end)
    assert _rows(project).equals(before)


def test_backfill_waits_for_the_writer_lock_of_the_table(three_days):
    project = three_days
    with table_lock(project.config.run.lock_dir, TABLE, 1), pytest.raises(CommitConflictError):
        _backfill(project, _midnight(2), _midnight(1), lock_timeout_seconds=0.3)
    # released: the same backfill now runs
    assert _backfill(project, _midnight(2), _midnight(1)).rows_written > 0


def test_backfill_adds_a_new_column_like_the_offload(three_days):
    project = three_days
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN venue TEXT")
        conn.execute(f"UPDATE {TABLE} SET venue = 'spot'")
    start, end = _midnight(2), _midnight(1)
    result = _backfill(project, start, end)
    assert result.schema_changes == ("added column venue string",)
    iceberg = project.catalog().load(project.spec())
    backfilled = iceberg.scan(row_filter=result.range.row_filter()).to_arrow()
    assert set(backfilled["venue"].to_pylist()) == {"spot"}
    assert result.rows_written == backfilled.num_rows


@pytest.mark.parametrize(
    "point", ["append.after", "append.after@3", "commit.before", "commit.after"]
)
def test_a_killed_backfill_leaves_the_range_old_or_repaired_never_half(three_days, point):
    from tests.conftest import worker_result

    project = three_days
    wm = project.state().watermark.cursor.ts
    project.seed(600, late_fraction=0.5, watermarks={TABLE: wm})
    project.offload()
    state = project.state()
    broken = project.reconcile()
    assert broken.missing_keys == state.late_rows_total > 0
    kwargs = {"backfill": [_midnight(3), wm], "batch_rows": 500}

    code, _ = worker_result(project.worker(failpoint=point, **kwargs))

    assert code == -signal.SIGKILL
    after = project.reconcile()
    assert after.duplicate_rows == 0 and after.unexpected_keys == 0
    assert after.missing_keys in (0, broken.missing_keys)  # all or nothing
    assert (after.missing_keys == 0) == (point == "commit.after")
    assert project.state().watermark == state.watermark
    code, out = worker_result(project.worker(**kwargs))
    assert code == 0, out
    assert project.reconcile().ok
