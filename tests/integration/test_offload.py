"""The offload core against a real SQLite hot tier and a real pyiceberg SqlCatalog."""

import sqlite3
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.types import DecimalType, IntegerType, LongType, TimestamptzType

from offload_pipeline.core.iceberg.state import TABLE_DEFAULTS
from offload_pipeline.core.window import MICROS
from offload_pipeline.demo.feed import create_table
from offload_pipeline.errors import SchemaMismatchError, SourceQueryError, SourceUnavailableError
from tests.conftest import Project, write_config

pytestmark = pytest.mark.integration
TABLE = "bronze_trades_binance"


def test_initial_load_creates_a_partitioned_table_with_the_explicit_schema(any_project):
    any_project.seed(25_000)
    result = any_project.offload()
    assert result.rows == 25_000
    assert result.commits == 3  # 10k-row chunks
    assert any_project.reconcile().ok
    iceberg = any_project.catalog().load(any_project.spec())
    types = {f.name: f.field_type for f in iceberg.schema().fields}
    assert types["exchange_timestamp"] == TimestamptzType()
    assert types["price"] == DecimalType(18, 8)
    assert types["sequence_number"] == LongType()
    assert types["kafka_partition"] == IntegerType()
    assert iceberg.schema().find_field("sequence_number").required
    assert str(iceberg.spec().fields[0].transform) == "day"
    assert (
        iceberg.properties["commit.retry.num-retries"] == TABLE_DEFAULTS["commit.retry.num-retries"]
    )


def test_data_files_give_up_the_dictionary_of_high_cardinality_columns(tmp_path):
    # random prices never repeat: their dictionary is dropped for plain encoding once it passes
    # the table's 64 KB limit, checked after each 20,000-row write batch, so the dictionary page
    # holds at most one batch of values instead of the whole file's
    config = write_config(tmp_path, run={"batch_rows": 200_000, "lock_dir": "locks"})
    project = Project(dir=tmp_path, config_path=config)
    project.seed(100_000)
    project.offload()
    iceberg = project.catalog().load(project.spec())
    assert iceberg.properties["write.parquet.dict-size-bytes"] == str(64 * 1024)
    largest = max(iceberg.scan().plan_files(), key=lambda task: task.file.record_count).file
    assert largest.record_count >= 40_000
    metadata = pq.ParquetFile(largest.file_path.removeprefix("file://")).metadata.row_group(0)
    names = [metadata.column(i).path_in_schema for i in range(metadata.num_columns)]
    price = metadata.column(names.index("price"))
    dictionary_bytes = price.data_page_offset - price.dictionary_page_offset
    assert dictionary_bytes <= 20_000 * 8 + 1024
    symbol = metadata.column(names.index("symbol"))
    assert symbol.has_dictionary_page  # four values: still dictionary-encoded


def test_decimals_and_timestamps_arrive_exactly(project):
    project.seed(200)
    project.offload()
    with sqlite3.connect(project.hot_db) as conn:
        hot = conn.execute(
            f"SELECT sequence_number, exchange_timestamp, price, quote_volume FROM {TABLE}"
        ).fetchall()
    iceberg = project.catalog().load(project.spec()).scan().to_arrow().to_pylist()
    by_seq = {r["sequence_number"]: r for r in iceberg}
    for seq, ts, price, quote_volume in hot:
        row = by_seq[seq]
        assert int(row["exchange_timestamp"].timestamp() * MICROS) // 10 == ts // 10
        assert str(row["price"]) == f"{price:.8f}"
        assert str(row["quote_volume"]) == f"{quote_volume:.8f}"


def test_incremental_runs_append_only_new_rows(any_project):
    any_project.seed(5_000)
    first = any_project.offload()
    any_project.seed(3_000)
    second = any_project.offload()
    assert (first.rows, second.rows) == (5_000, 3_000)
    assert second.previous_watermark == first.watermark
    assert second.watermark.cursor > first.watermark.cursor
    assert any_project.iceberg_rows() == 8_000
    assert any_project.reconcile().ok


def test_rerun_with_nothing_new_writes_no_snapshot(any_project):
    any_project.seed(2_000)
    any_project.offload()
    iceberg = any_project.catalog().load(any_project.spec())
    snapshots = len(iceberg.snapshots())
    again = any_project.offload()
    assert again.rows == 0 and again.commits == 0
    assert len(any_project.catalog().load(any_project.spec()).snapshots()) == snapshots
    assert again.watermark == again.previous_watermark


def test_equal_timestamps_across_chunk_boundaries_are_not_split_or_lost(any_project):
    # 90 % of rows share the previous row's microsecond: long runs of equal timestamps
    any_project.seed(30_000, tie_fraction=0.9)
    result = any_project.offload(batch_rows=997)
    assert result.commits > 20
    assert any_project.reconcile().ok
    assert any_project.iceberg_rows() == 30_000


def test_duplicate_cursor_values_are_never_split_across_commits(project):
    project.seed(100)
    with sqlite3.connect(project.hot_db) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()[0]
        # the same table without its key, so the tie-breaker can repeat
        conn.execute(ddl.replace(f'"{TABLE}"', "t2").replace("PRIMARY KEY", ""))
        conn.execute(f"INSERT INTO t2 SELECT * FROM {TABLE}")
        conn.execute(f"DROP TABLE {TABLE}")
        conn.execute(f"ALTER TABLE t2 RENAME TO {TABLE}")
        conn.execute(
            f"UPDATE {TABLE} SET exchange_timestamp = 1, sequence_number = 7 WHERE rowid <= 50"
        )
    result = project.offload(batch_rows=10)
    assert result.rows == 100
    assert project.iceberg_rows() == 100
    # no commit boundary falls inside the group of 50 equal cursors
    sizes = [
        int(s.summary.additional_properties["offload.rows"])
        for s in project.catalog().load(project.spec()).snapshots()
    ]
    assert sizes[0] >= 50


def test_settle_delay_holds_back_the_newest_rows(any_project):
    spec = any_project.spec()
    any_project.seed(1_000, span_seconds=600)
    now = time.time()
    result = any_project.offload(clock=lambda: now)
    assert result.rows == 1_000
    # rows younger than the settle delay wait for a later run
    any_project.seed(100, span_seconds=1)
    from dataclasses import replace

    settled = replace(spec, settle_delay_seconds=60)
    held = any_project.offload(spec=settled)
    assert held.rows == 0
    later = any_project.offload(spec=settled, clock=lambda: time.time() + 120)
    assert later.rows == 100


def test_late_rows_are_counted_once_and_reported(any_project):
    any_project.seed(2_000)
    first = any_project.offload()
    wm = first.watermark.cursor.ts
    any_project.seed(1_000, late_fraction=0.3, watermarks={TABLE: wm})
    second = any_project.offload()
    late_expected = any_project.hot_count() - 2_000 - second.rows
    assert late_expected > 200
    assert second.late_rows == late_expected
    assert any_project.state().late_rows_total == late_expected
    any_project.seed(10)
    third = any_project.offload()
    assert third.late_rows == 0  # already counted
    # the late rows are behind the watermark: reconciliation sees them as missing until a backfill
    assert any_project.reconcile().missing_keys == late_expected


def test_huge_backlog_is_committed_in_bounded_chunks(any_project):
    any_project.seed(60_000)
    result = any_project.offload(batch_rows=8_000)
    assert result.commits == 8
    iceberg = any_project.catalog().load(any_project.spec())
    # every commit carries its own watermark, and they advance
    marks = [int(s.summary.additional_properties["offload.rows"]) for s in iceberg.snapshots()]
    assert sum(marks) == 60_000 and max(marks) <= 8_000
    assert any_project.state().rows_total == 60_000


def test_missing_source_table_is_a_source_query_error(project):
    project.seed(10, table="bronze_trades_kraken")
    with pytest.raises(SourceQueryError, match="source table 'bronze_trades_binance' not found"):
        project.offload()


def test_missing_hot_tier_is_source_unavailable(project):
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        project.offload()


def test_unmappable_column_type_fails_naming_the_column(project):
    with sqlite3.connect(project.hot_db) as conn:
        create_table(conn, TABLE)
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN payload BLOB")
    with pytest.raises(SchemaMismatchError, match="column 'payload'"):
        project.offload()


def test_cursor_column_missing_from_source_fails_naming_it(project, tmp_path):
    from tests.conftest import write_config

    write_config(
        tmp_path,
        defaults={
            "cursor": {"event_time": "ts", "tie_breaker": "sequence_number"},
            "primary_key": ["sequence_number"],
            "partition": "day(ts)",
        },
    )
    project.seed(10)
    with pytest.raises(SchemaMismatchError, match="column 'ts' named in the config is not in"):
        project.offload()


def test_reader_is_a_consistent_snapshot_while_the_feed_writes(any_project):
    """Rows inserted after the bound was read are not visible to that run: never half a window."""
    any_project.seed(1_000)
    spec = any_project.spec()
    from offload_pipeline.core.sources import open_source
    from offload_pipeline.core.window import Window

    with open_source(spec.source).snapshot(spec) as snap:
        bound = snap.max_event_time()
        any_project.seed(500)  # committed by another connection mid-read
        rows = pa.Table.from_batches(list(snap.read(Window(None, 2**62), 100)))
    assert rows.num_rows == 1_000
    assert max(rows.column("exchange_timestamp").cast(pa.int64()).to_pylist()) == bound
