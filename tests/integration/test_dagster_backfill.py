"""Backfills and the reconciliation check through Dagster: the days asset's partition status is
what Iceberg holds, a range backfill is one run replacing those days, the open day ends at the
watermark, and check severities, on a real Dagster instance."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from offload_pipeline.core.window import DAY, iso
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.jobs import days_key, partition_of
from offload_pipeline.defs.runs import run_cycle
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]


def _day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def _backfill(config, instance, first: str, last: str):
    """What the UI launches for a range of the days asset (single-run backfill policy)."""
    key = days_key(TABLE)
    job = build_definitions(config).resolve_implicit_job_def_def_for_assets([key])
    return job.execute_in_process(
        instance=instance,
        asset_selection=[key],
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )


def _check_result(instance):
    key = dg.AssetCheckKey(dg.AssetKey(TABLE), "reconciliation")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


@pytest.fixture
def offloaded(project):
    project.seed(3_000, span_seconds=3 * 86_400)
    config = project.config
    with dg.DagsterInstance.get() as instance:
        (outcome,) = run_cycle(build_definitions(config), config, instance, [TABLE])
    assert outcome.success
    return project


def test_a_range_backfill_is_one_run_that_replaces_those_days(offloaded):
    project = offloaded
    before = project.state()
    rows = project.iceberg_rows()
    with dg.DagsterInstance.get() as instance:
        result = _backfill(project.config, instance, _day(3), _day(1))
        assert result.success
        events = result.get_asset_materialization_events()  # one run, every day of the range
        materializations = instance.fetch_materializations(days_key(TABLE), limit=10).records
    assert {e.partition for e in events} == {_day(3), _day(2), _day(1)}
    metadata = events[0].materialization.metadata
    assert metadata["mode"].value == "backfill"
    assert metadata["rows_written"].value == metadata["rows_replaced"].value > 0
    assert metadata["rows_added"].value == 0
    assert _day(3) in metadata["range"].value and _day(0) in metadata["range"].value
    assert {_day(3), _day(2), _day(1)} <= {m.partition_key for m in materializations}
    assert project.state().watermark == before.watermark
    assert project.iceberg_rows() == rows
    assert project.reconcile().ok


def _days_in_iceberg(project) -> set[str]:
    """The UTC days Iceberg holds rows for, read with pyiceberg."""
    column = project.spec().cursor.event_time
    moments = project.catalog().load(project.spec()).scan().to_arrow()[column].to_pylist()
    return {partition_of(moment.replace(tzinfo=UTC)) for moment in moments}


def test_every_day_iceberg_holds_is_materialized_and_no_other(offloaded):
    project = offloaded
    with dg.DagsterInstance.get() as instance:
        materialized = instance.get_materialized_partitions(days_key(TABLE))
    held = _days_in_iceberg(project)
    assert len(held) == 4  # three days ago up to today
    assert materialized == held


def test_days_iceberg_held_before_dagster_knew_are_reported_by_the_next_offload(project):
    project.seed(2_000, span_seconds=3 * 86_400)
    project.offload()  # committed outside Dagster: the instance knows no day
    project.seed(10)
    config = project.config
    with dg.DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(days_key(TABLE)) == set()
        (outcome,) = run_cycle(build_definitions(config), config, instance, [TABLE])
        assert outcome.success
        materialized = instance.get_materialized_partitions(days_key(TABLE))
    assert materialized == _days_in_iceberg(project)


def test_the_open_day_backfills_up_to_the_watermark_and_leaves_later_rows_to_the_offload(
    offloaded,
):
    project = offloaded
    watermark = project.state().watermark
    rows = project.iceberg_rows()
    project.seed(50, span_seconds=1)
    with dg.DagsterInstance.get() as instance:
        result = _backfill(project.config, instance, _day(0), _day(0))
        assert result.success
        (event,) = result.get_asset_materialization_events()
        assert project.iceberg_rows() == rows  # nothing after the watermark written
        assert project.state().watermark == watermark
        (outcome,) = run_cycle(build_definitions(project.config), project.config, instance, [TABLE])
    assert event.materialization.metadata["range"].value == (
        f"[{iso(watermark.cursor.ts // DAY * DAY)}, {iso(watermark.cursor.ts)})"
    )
    assert outcome.success and outcome.metadata["rows"] == 50
    assert project.reconcile().ok


def test_the_check_passes_then_warns_on_late_rows(offloaded):
    project = offloaded
    config = project.config
    with dg.DagsterInstance.get() as instance:
        clean = _check_result(instance)
        wm = project.state().watermark.cursor.ts
        project.seed(200, late_fraction=0.5, watermarks={TABLE: wm})
        run_cycle(build_definitions(config), config, instance, [TABLE])
        late = _check_result(instance)
    assert clean.passed and clean.metadata["delta_rows"].value == 0
    assert not late.passed and late.severity == dg.AssetCheckSeverity.WARN
    assert late.metadata["delta_rows"].value == project.state().late_rows_total > 0
    assert "backfill" in late.description


def test_the_check_errors_on_duplicates(offloaded):
    project = offloaded
    config = project.config
    iceberg = project.catalog().load(project.spec())
    iceberg.append(iceberg.scan(limit=5).to_arrow())
    with dg.DagsterInstance.get() as instance:
        run_cycle(build_definitions(config), config, instance, [TABLE])
        duplicated = _check_result(instance)
    assert not duplicated.passed and duplicated.severity == dg.AssetCheckSeverity.ERROR
    assert duplicated.metadata["delta_rows"].value == -5
