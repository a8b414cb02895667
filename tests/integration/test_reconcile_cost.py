"""The reconciliation check on a table of more than a million rows: the same verdicts as on a small
one, while the only data files it reads are those of the watermark's day and of the late-row
lookback window (every other compared day is counted from the manifests)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from random import Random

import pytest
from pyiceberg.expressions import EqualTo
from pyiceberg.io.pyarrow import ArrowScan

from offload_pipeline.core.reconcile import check_closed_windows, iceberg_day_counts
from offload_pipeline.core.window import DAY, MICROS
from offload_pipeline.demo.feed import seed, seed_bulk
from tests.conftest import Project, write_config
from tests.integration.test_reconcile import _recent_key

pytestmark = pytest.mark.integration
TABLE = "bronze_trades_binance"
ROWS = 1_200_000
SPAN_DAYS = 10


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """1.2M rows over ten days, offloaded in one run (shared: building it takes seconds)."""
    directory = tmp_path_factory.mktemp("large")
    project = Project(directory, write_config(directory))
    end = int(time.time() * MICROS) - 60 * MICROS
    seed_bulk(project.hot_db, TABLE, ROWS, end - SPAN_DAYS * DAY, end)
    assert project.offload(batch_rows=500_000).rows == ROWS
    return project


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every data file pyiceberg reads rows from (all reads go through ``ArrowScan``)."""
    tasks: list[object] = []
    original = ArrowScan.to_record_batches

    def recording(self: ArrowScan, planned):  # type: ignore[no-untyped-def]
        planned = list(planned)
        tasks.extend(planned)
        return original(self, planned)

    monkeypatch.setattr(ArrowScan, "to_record_batches", recording)
    yield tasks


def _check(project: Project):
    return check_closed_windows(project.table(), 7)


def _allowed_days(project: Project) -> set[int]:
    """The day partitions (days since the epoch) the check may read: the watermark's day and
    the days the late-row lookback window overlaps."""
    end = project.state().watermark.cursor.ts
    lookback = int(project.spec().late_row_lookback_seconds * MICROS)
    return {end // DAY, (end - lookback) // DAY}


def _assert_bounded(project: Project, reads: list[object]) -> None:
    allowed = _allowed_days(project)
    read_days = {task.file.partition[0] for task in reads}
    assert read_days and read_days <= allowed
    iceberg = project.catalog().load(project.spec())
    rows_in_allowed = sum(
        task.file.record_count
        for task in iceberg.scan().plan_files()
        if task.file.partition[0] in allowed
    )
    rows_read = sum(task.file.record_count for task in reads)
    # the key read and the count read of the watermark's day touch the same files
    assert rows_read <= 2 * rows_in_allowed < ROWS / 2


@pytest.fixture
def restored(large: Project) -> Iterator[Project]:
    """``large``, its Iceberg table rolled back to the current snapshot afterwards."""
    iceberg = large.catalog().load(large.spec())
    snapshot_id = iceberg.current_snapshot().snapshot_id
    yield large
    iceberg = large.catalog().load(large.spec())
    iceberg.manage_snapshots().rollback_to_snapshot(snapshot_id).commit()


def test_a_clean_large_table_passes_reading_only_the_recent_files(restored, reads):
    check = _check(restored)
    assert check.severity == "ok" and check.delta_rows == 0
    assert len(check.days) == 7
    assert sum(d.iceberg_rows for d in check.days) > ROWS / 2  # counted without reading them
    _assert_bounded(restored, reads)


def test_a_duplicate_is_an_error(restored, reads):
    iceberg = restored.catalog().load(restored.spec())
    iceberg.append(
        iceberg.scan(row_filter=EqualTo("sequence_number", _recent_key(restored))).to_arrow()
    )
    reads.clear()
    check = _check(restored)
    assert check.severity == "error"
    assert check.duplicate_rows == 1 and check.delta_rows == -1
    _assert_bounded(restored, reads)


def test_a_missing_row_is_an_error(restored, reads):
    iceberg = restored.catalog().load(restored.spec())
    iceberg.delete(EqualTo("sequence_number", _recent_key(restored)))
    reads.clear()
    check = _check(restored)
    assert check.severity == "error"
    assert check.missing_keys == 1 and check.delta_rows == 1
    _assert_bounded(restored, reads)


def test_a_row_missing_from_an_old_day_shows_in_that_days_count(restored, reads):
    """A day counted from the manifests still sees a lost row (the delete rewrote its file)."""
    old_day = restored.state().watermark.cursor.ts // DAY - 3
    with sqlite3.connect(restored.hot_db) as conn:
        (key,) = conn.execute(
            f"SELECT min(sequence_number) FROM {TABLE} WHERE exchange_timestamp >= ?",
            (old_day * DAY,),
        ).fetchone()
    iceberg = restored.catalog().load(restored.spec())
    iceberg.delete(EqualTo("sequence_number", key))
    reads.clear()
    check = _check(restored)
    assert check.severity == "error" and check.delta_rows == 1
    assert [d.delta_rows for d in check.days if d.delta_rows] == [1]
    _assert_bounded(restored, reads)


def test_other_partitionings_count_the_same(large):
    """``hour`` sums hours from metadata, ``month`` falls back to a bounded read: same counts."""
    end = large.state().watermark.cursor.ts
    first = (end // DAY - 6) * DAY
    by_day = iceberg_day_counts(
        large.catalog().load(large.spec()), "exchange_timestamp", first, end
    )
    for transform in ("hour", "month"):
        spec = replace(large.spec(), partition_transform=transform, namespace=transform)
        assert large.offload(spec=spec, batch_rows=500_000).rows == ROWS
        iceberg = large.catalog().load(spec)
        assert iceberg_day_counts(iceberg, "exchange_timestamp", first, end) == by_day


def test_a_late_row_warns_with_the_delta(large):
    """Last: it moves the committed state of the shared table."""
    wm = large.state().watermark.cursor.ts
    seed(large.hot_db, [TABLE], 20, late_fraction=0.5, watermarks={TABLE: wm}, rng=Random(7))
    large.offload(batch_rows=500_000)
    late = large.state().late_rows_total
    assert late > 0
    check = _check(large)
    assert check.severity == "warn"
    assert check.delta_rows == late == check.missing_rows == check.late_rows_outstanding
