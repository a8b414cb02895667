"""Hot-tier schema changes: new columns evolve the Iceberg table; anything else fails cleanly."""

import sqlite3
from decimal import Decimal

import pytest
from pyiceberg.types import DecimalType, StringType

from offload_pipeline.errors import SchemaMismatchError

pytestmark = pytest.mark.integration
TABLE = "bronze_trades_binance"


def _snapshot_ids(project):
    return [s.snapshot_id for s in project.catalog().load(project.spec()).snapshots()]


def test_new_nullable_columns_evolve_the_table_and_are_offloaded(project):
    project.seed(200)
    project.offload()
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN venue TEXT")
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN fee DECIMAL(18,8)")
    # more rows than one ADBC batch with the new columns NULL, then rows that carry values:
    # the reader must not type the columns from the all-NULL first batch
    project.seed(70_000)
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(
            f"UPDATE {TABLE} SET venue = 'spot', fee = 0.00012500 WHERE sequence_number IN "
            f"(SELECT sequence_number FROM {TABLE} ORDER BY exchange_timestamp DESC, "
            "sequence_number DESC LIMIT 10)"
        )

    result = project.offload(batch_rows=100_000)

    assert result.schema_changes == ("added column venue string", "added column fee decimal(18, 8)")
    iceberg = project.catalog().load(project.spec())
    assert iceberg.schema().find_field("venue").field_type == StringType()
    assert iceberg.schema().find_field("fee").field_type == DecimalType(18, 8)
    assert not iceberg.schema().find_field("venue").required
    assert project.state().schema_changes_total == 2
    rows = iceberg.scan(selected_fields=("venue", "fee")).to_arrow()
    assert rows.num_rows == 70_200
    assert rows.column("venue").to_pylist().count("spot") == 10
    assert rows.column("venue").null_count == 70_190
    assert Decimal("0.000125") in rows.column("fee").to_pylist()
    assert project.reconcile().ok

    project.seed(10)
    again = project.offload()
    assert again.schema_changes == ()
    assert project.state().schema_changes_total == 2


def test_a_dropped_column_fails_naming_it_without_writing(project):
    project.seed(100)
    project.offload()
    before = _snapshot_ids(project)
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN kafka_offset")
    with pytest.raises(
        SchemaMismatchError, match="column 'kafka_offset' .* is missing from the hot"
    ):
        project.offload()
    assert _snapshot_ids(project) == before
    assert project.catalog().load(project.spec()).schema().find_field("kafka_offset")


def test_a_type_change_fails_naming_it_and_applies_no_other_change(project):
    project.seed(100)
    project.offload()
    before = _snapshot_ids(project)
    schema_before = project.catalog().load(project.spec()).schema()
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {TABLE} RENAME COLUMN symbol TO symbol_old")
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN symbol BIGINT")
    with pytest.raises(SchemaMismatchError, match="column 'symbol': hot tier has long"):
        project.offload()
    iceberg = project.catalog().load(project.spec())
    assert [s.snapshot_id for s in iceberg.snapshots()] == before
    # the new column symbol_old was not added either: a failing change applies nothing
    assert iceberg.schema() == schema_before
    assert project.state().schema_changes_total == 0
