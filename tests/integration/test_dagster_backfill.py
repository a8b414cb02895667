"""Backfills and the reconciliation check through Dagster: day partitions, a single-run range
backfill, refusal of the open day, and check severities, on a real Dagster instance."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.jobs import BRONZE_JOB
from offload_pipeline.defs.runs import run_cycle
from offload_pipeline.feed import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]


def _day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def _backfill(config, instance, first: str, last: str):
    """What the UI launches for a range with a single-run backfill policy."""
    job = build_definitions(config).resolve_job_def(BRONZE_JOB)
    return job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(TABLE)],
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
        materializations = instance.fetch_materializations(dg.AssetKey(TABLE), limit=10).records
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


def test_the_open_day_is_refused_without_retries(offloaded):
    with dg.DagsterInstance.get() as instance:
        result = _backfill(offloaded.config, instance, _day(0), _day(0))
        assert not result.success
        failures = [
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
        ]
        retries = [
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
        ]
    (failure,) = failures
    data = failure.step_failure_data.user_failure_data
    assert data.metadata["error_type"].value == "config_invalid"
    assert "reaches beyond the committed watermark" in data.description
    assert retries == []


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
