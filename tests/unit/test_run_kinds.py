"""Which runs are backfills: the metrics count every other run's table steps as offloads."""

import pytest

from offload_pipeline.defs.jobs import is_backfill


@pytest.mark.parametrize(
    ("tags", "backfill"),
    [
        ({}, False),  # Materialize on an offload asset, `dagster asset materialize`
        ({"offload/mode": "incremental"}, False),  # the schedule, `offload-pipeline run`
        ({"offload/mode": "incremental", "dagster/partition": "2026-03-04"}, False),  # older runs
        ({"offload/mode": "backfill", "dagster/asset_partition_range_start": "x"}, True),
        ({"dagster/asset_partition_range_start": "2026-03-01"}, True),  # a UI range backfill
        ({"dagster/partition": "2026-03-04"}, True),  # one day materialized from the UI
    ],
)
def test_a_run_is_a_backfill_by_its_tag_or_its_partitions(tags, backfill):
    assert is_backfill(tags) is backfill
