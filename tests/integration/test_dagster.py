"""The Dagster code location against a real (temporary) Dagster instance."""

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest
import yaml

from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions, defs
from offload_pipeline.defs.jobs import BRONZE_JOB, MODE_TAG, days_key
from offload_pipeline.defs.runs import run_cycle
from offload_pipeline.defs.schedules import BRONZE_SCHEDULE
from offload_pipeline.defs.steps import pool_name
from offload_pipeline.errors import ConfigInvalidError
from tests.conftest import ROOT
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration


def test_repository_definitions_load_from_the_workspace_module(monkeypatch):
    monkeypatch.setenv("OFFLOAD_CONFIG", str(ROOT / "offload.yaml"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_code_location_reads_its_config_when_loaded_not_when_imported(
    project, tmp_path, monkeypatch
):
    missing = tmp_path / "absent.yaml"
    imported = subprocess.run(
        [sys.executable, "-c", "import offload_pipeline.definitions"],
        env={**os.environ, "OFFLOAD_CONFIG": str(missing)},
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    monkeypatch.setenv("OFFLOAD_CONFIG", str(missing))
    with pytest.raises(ConfigInvalidError, match="absent.yaml"):
        defs()
    monkeypatch.setenv("OFFLOAD_CONFIG", str(project.config_path))
    keys = defs().resolve_asset_graph().get_all_asset_keys()
    assert {key.to_user_string() for key in keys} == {
        *DEMO_TABLES,
        *(f"{t}_days" for t in DEMO_TABLES),
    }


def test_per_table_an_unpartitioned_offload_asset_and_a_single_run_days_asset(project):
    defs = build_definitions(project.config)
    for name in DEMO_TABLES:
        asset = defs.resolve_assets_def(name)
        # unpartitioned: the UI's Materialize launches at once, no partition dialog
        assert asset.partitions_def is None
        assert asset.group_names_by_key[dg.AssetKey(name)] == "bronze"
        assert "iceberg" in asset.specs_by_key[dg.AssetKey(name)].kinds
        assert asset.op.pool == pool_name(name)
        days = defs.resolve_assets_def(days_key(name))
        assert days.group_names_by_key[days_key(name)] == "bronze_days"
        assert days.op.pool == pool_name(name)  # a backfill and an offload never overlap
        assert days.backfill_policy == dg.BackfillPolicy.single_run()
        assert days.partitions_def.start.strftime("%Y-%m-%d") == project.config.partitions_start
        policy = asset.specs_by_key[dg.AssetKey(name)].freshness_policy
        # the same bounds as the lag alerts, so the UI and Prometheus tell the same story
        lag = yaml.safe_load((ROOT / "docker" / "prometheus" / "thresholds.yml").read_text())
        assert policy.warn_window.seconds == lag["lag_warning_seconds"]
        assert policy.fail_window.seconds == lag["lag_critical_seconds"]
        check_keys = {k.name for k in asset.check_keys} | {
            k.name
            for c in defs.asset_checks or []
            for k in c.check_keys
            if k.asset_key.path == [name]
        }
        assert "reconciliation" in check_keys
    job = defs.resolve_job_def(BRONZE_JOB)
    assert job.tags["dagster/max_runtime"] == "1800"
    schedule = defs.resolve_schedule_def(BRONZE_SCHEDULE)
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_schedule_tick_requests_a_run_of_the_bronze_job(project):
    defs = build_definitions(project.config)
    schedule = defs.resolve_schedule_def(BRONZE_SCHEDULE)
    tick = datetime(2026, 3, 4, 23, 45, tzinfo=UTC)
    with dg.DagsterInstance.get() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            repository_def=defs.get_repository_def(),
        )
        result = schedule.evaluate_tick(context)
    (request,) = result.run_requests
    assert request.partition_key is None
    assert request.tags[MODE_TAG] == "incremental"
    assert schedule.job_name == BRONZE_JOB


def test_materialize_all_tables_records_plottable_metadata(project):
    for table in DEMO_TABLES:
        project.seed(3_000, table=table)
    config = project.config
    with dg.DagsterInstance.get() as instance:
        outcomes = run_cycle(build_definitions(config), config, instance, [])
        assert [o.success for o in outcomes] == [True, True, True]
        event = instance.get_latest_materialization_event(dg.AssetKey(DEMO_TABLES[0]))
    metadata = event.asset_materialization.metadata
    assert metadata["rows"].value == 3_000
    for key in ("duration_seconds", "rows_per_second", "lag_seconds"):
        assert isinstance(metadata[key], dg.FloatMetadataValue), key
    for key in ("window_end", "watermark", "snapshot_id"):
        assert metadata[key].value, key
    assert project.state().watermark is not None
    assert all(project.reconcile(t).ok for t in DEMO_TABLES)


def test_a_cycle_is_one_step_and_nine_events_per_table_with_its_check_on_the_asset(project):
    """Per table one step writes the offload, its hook's push and its reconciliation: no check
    step of its own, no skipped hook and no log line, only what the UI shows per asset."""
    for table in DEMO_TABLES:
        project.seed(100, table=table)
    config = project.config
    defs = build_definitions(config)
    with dg.DagsterInstance.get() as instance:
        run_cycle(defs, config, instance, [])  # the first also reports the days it wrote
        outcomes = run_cycle(defs, config, instance, [])
        # the offload's metadata, not the check's output next to it in the step
        assert [(o.success, o.metadata["rows"]) for o in outcomes] == [(True, 0)] * 3
        (run, _) = instance.get_runs(limit=2)
        logs = instance.all_logs(run.run_id)
        steps = {s.step_key for s in instance.get_run_step_stats(run.run_id)}
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(t), "reconciliation") for t in DEMO_TABLES]
        )
    assert steps == set(DEMO_TABLES)
    per_table = Counter(e.dagster_event_type for e in logs if e.step_key in DEMO_TABLES)
    assert per_table == {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED: 3,  # written when the run is created
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED: 3,
        dg.DagsterEventType.STEP_START: 3,
        dg.DagsterEventType.STEP_OUTPUT: 6,  # the asset's and the check's
        dg.DagsterEventType.ASSET_MATERIALIZATION: 3,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION: 3,
        dg.DagsterEventType.HOOK_COMPLETED: 3,
        dg.DagsterEventType.STEP_SUCCESS: 3,
    }
    assert sum(per_table.values()) == 9 * len(DEMO_TABLES)
    assert not [e for e in logs if e.dagster_event is None]  # no per-table log line
    assert len(logs) - sum(per_table.values()) <= 8  # and a few events of the run itself
    for key, record in checks.items():
        assert record.run_id == run.run_id, key
        assert record.event.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        assert record.event.dagster_event.event_specific_data.passed, key


def test_a_table_that_fails_leaves_the_other_tables_checked_in_the_same_run(project):
    """Each table's check runs in its own step: one failing offload stops no other check."""
    failing, *healthy = DEMO_TABLES
    for table in healthy:
        project.seed(100, table=table)
    config = project.config
    with dg.DagsterInstance.get() as instance:
        outcomes = run_cycle(build_definitions(config), config, instance, [])
        (run,) = instance.get_runs(limit=1)
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(t), "reconciliation") for t in DEMO_TABLES]
        )
    assert [o.success for o in outcomes] == [False, True, True]
    assert run.status == dg.DagsterRunStatus.FAILURE
    planned_only = checks[dg.AssetCheckKey(dg.AssetKey(failing), "reconciliation")]
    assert planned_only.event.dagster_event_type == (
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    )
    for table in healthy:
        record = checks[dg.AssetCheckKey(dg.AssetKey(table), "reconciliation")]
        assert record.run_id == run.run_id
        assert record.event.dagster_event.event_specific_data.passed


def test_config_errors_are_not_retried_but_transient_errors_are(project, tmp_path):
    from tests.conftest import write_config

    write_config(
        tmp_path, run={"lock_dir": "locks", "retry": {"max_retries": 2, "delay_seconds": 0}}
    )
    config = load_config(project.config_path)
    defs = build_definitions(config)
    with dg.DagsterInstance.get() as instance:
        # no hot tier at all: source_unavailable, retryable -> 1 + 2 attempts
        (unavailable,) = run_cycle(defs, config, instance, [DEMO_TABLES[0]])
        project.seed(10, table=DEMO_TABLES[1])
        # hot tier present but the table missing: source_query, permanent -> 1 attempt
        (missing,) = run_cycle(defs, config, instance, [DEMO_TABLES[0]])
        runs = instance.get_runs(limit=2)
        retries = [
            len(instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY))
            for r in runs
        ]
    assert (unavailable.error_type, missing.error_type) == ("source_unavailable", "source_query")
    assert "not found" in missing.message
    assert retries == [0, 2]  # retries, newest run first


def test_the_hook_runs_once_after_the_last_failed_attempt(project, tmp_path):
    """One hook for success and failure: a table failing on every retry gets one completed hook,
    after its last attempt (its push is the failure the alerts count), and one skipped hook per
    attempt the retry policy repeated."""
    from tests.conftest import write_config

    write_config(
        tmp_path, run={"lock_dir": "locks", "retry": {"max_retries": 2, "delay_seconds": 0}}
    )
    config = load_config(project.config_path)
    with dg.DagsterInstance.get() as instance:
        (outcome,) = run_cycle(build_definitions(config), config, instance, [DEMO_TABLES[0]])
        (run,) = instance.get_runs(limit=1)
        hooks = Counter(
            e.dagster_event_type
            for e in instance.all_logs(run.run_id)
            if e.dagster_event_type
            in (
                dg.DagsterEventType.HOOK_COMPLETED,
                dg.DagsterEventType.HOOK_SKIPPED,
                dg.DagsterEventType.HOOK_ERRORED,
            )
        )
    assert outcome.error_type == "source_unavailable"
    assert hooks == {
        dg.DagsterEventType.HOOK_COMPLETED: 1,
        dg.DagsterEventType.HOOK_SKIPPED: 2,
    }


def test_the_pool_serializes_two_runs_of_one_table(project):
    """A second in-process run of a table waits for the first's pool slot: its step starts only
    after the first's ends (the file lock alone would let it start and wait inside the step).

    The second run starts once the first holds the slot: Dagster's SQLite storage cannot lock
    rows, so two claims in the same millisecond can both succeed there (PostgreSQL storage locks);
    the table's file lock and the Iceberg commit check still keep such a pair exactly once.
    """
    project.seed(20_000)

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "offload_pipeline.cli",
                "--config",
                str(project.config_path),
                "run",
                "--table",
                DEMO_TABLES[0],
            ],
            env={**os.environ, "OFFLOAD_FAILPOINT": "plan~3000"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start()
    with dg.DagsterInstance.get() as instance:
        deadline = time.monotonic() + 60
        while not any(
            instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)
            for r in instance.get_runs()
        ):
            assert time.monotonic() < deadline, "the first run never started its step"
            time.sleep(0.1)
    second = start()
    for proc in (first, second):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
    with dg.DagsterInstance.get() as instance:
        spans = []
        for run in instance.get_runs():
            logs = instance.all_logs(run.run_id)
            kinds = [(e.dagster_event_type, e.timestamp) for e in logs]
            begin = next(t for k, t in kinds if k == dg.DagsterEventType.STEP_START)
            end = next(t for k, t in kinds if k == dg.DagsterEventType.STEP_SUCCESS)
            spans.append((begin, end))
    (_, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end, f"steps overlapped: {spans}"
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == 20_000
