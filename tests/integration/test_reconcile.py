"""The closed-window reconciliation behind the asset check: clean tables pass, late rows warn,
duplicates, gaps and rows the hot tier does not hold are errors."""

import sqlite3

import pytest
from pyiceberg.expressions import EqualTo

from offload_pipeline.core.reconcile import check_closed_windows
from offload_pipeline.core.window import MICROS

pytestmark = pytest.mark.integration
TABLE = "bronze_trades_binance"


def _check(project, days=7):
    return check_closed_windows(project.table(), days)


@pytest.fixture
def offloaded(project):
    project.seed(3_000, span_seconds=3 * 86_400)
    project.offload()
    return project


def _recent_key(project, back_seconds=60):
    """A key of a committed row a little behind the watermark (inside the recent window)."""
    wm = project.state().watermark.cursor.ts
    with sqlite3.connect(project.hot_db) as conn:
        return conn.execute(
            f"SELECT sequence_number FROM {TABLE} WHERE exchange_timestamp < ? "
            "ORDER BY exchange_timestamp DESC LIMIT 1",
            (wm - back_seconds * MICROS,),
        ).fetchone()[0]


def test_a_clean_table_passes_with_per_day_counts(offloaded):
    check = _check(offloaded)
    assert check.severity == "ok" and check.delta_rows == 0
    assert len(check.days) == 7  # the watermark's day and the six before, cut at it
    checked = offloaded.hot_count() - _rows_at_or_after_watermark(offloaded)
    assert sum(d.hot_rows for d in check.days) == checked
    assert sum(d.iceberg_rows for d in check.days) == checked


def _rows_at_or_after_watermark(project):
    wm = project.state().watermark.cursor.ts
    with sqlite3.connect(project.hot_db) as conn:
        query = f"SELECT count(*) FROM {TABLE} WHERE exchange_timestamp >= ?"
        return conn.execute(query, (wm,)).fetchone()[0]


def test_late_rows_warn_with_the_delta(offloaded):
    wm = offloaded.state().watermark.cursor.ts
    offloaded.seed(300, late_fraction=0.5, watermarks={TABLE: wm})
    offloaded.offload()
    late = offloaded.state().late_rows_total
    check = _check(offloaded)
    assert check.severity == "warn"
    assert check.delta_rows == late == check.missing_rows


def test_duplicates_are_an_error(offloaded):
    iceberg = offloaded.catalog().load(offloaded.spec())
    iceberg.append(
        iceberg.scan(row_filter=EqualTo("sequence_number", _recent_key(offloaded))).to_arrow()
    )
    check = _check(offloaded)
    assert check.severity == "error"
    assert check.duplicate_rows == 1 and check.delta_rows == -1


def test_a_gap_beyond_the_counted_late_rows_is_an_error(offloaded):
    iceberg = offloaded.catalog().load(offloaded.spec())
    iceberg.delete(EqualTo("sequence_number", _recent_key(offloaded)))
    check = _check(offloaded)
    assert check.severity == "error"
    assert check.missing_keys == 1 and check.delta_rows == 1


def test_rows_missing_from_the_hot_tier_are_an_error(offloaded):
    with sqlite3.connect(offloaded.hot_db) as conn:
        conn.execute(f"DELETE FROM {TABLE} WHERE sequence_number = ?", (_recent_key(offloaded),))
    check = _check(offloaded)
    assert check.severity == "error"
    assert check.unexpected_keys == 1 and check.delta_rows == -1


def test_a_table_never_offloaded_has_nothing_to_check(project):
    project.seed(10)
    check = _check(project)
    assert check.severity == "ok" and check.days == () and check.watermark is None
