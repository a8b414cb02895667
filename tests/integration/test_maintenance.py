"""Iceberg maintenance on real tables: compaction keeps every row and the watermark, snapshots
expire, orphan files of killed attempts go and referenced files stay, one writer at a time."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from offload_pipeline.core.handle import open_table
from offload_pipeline.core.iceberg.state import MAINTENANCE_TS, is_offload_commit
from offload_pipeline.core.maintenance import (
    compact_and_expire,
    live_data_files,
    referenced_files,
)
from offload_pipeline.core.status import observe
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.jobs import MAINTENANCE_JOB
from offload_pipeline.defs.maintenance import op_name
from offload_pipeline.defs.runs import run_maintenance
from offload_pipeline.defs.schedules import MAINTENANCE_SCHEDULE
from offload_pipeline.defs.steps import pool_name
from offload_pipeline.errors import CommitConflictError
from offload_pipeline.metrics import push
from tests.conftest import worker_result, write_config
from tests.e2e.test_metrics import value as pushed
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]
DAY = 86_400


def configure(project, batch_rows: int = 100, **maintenance) -> None:
    """Small commits (many snapshots and small files); maintenance settings for this test."""
    maintenance.setdefault("orphan_min_age_seconds", 0)
    write_config(
        project.dir,
        run={"batch_rows": batch_rows, "lock_dir": "locks", "retry": {"max_retries": 0}},
        maintenance=maintenance,
    )


def rows_and_keys(project) -> tuple[int, set[int]]:
    rows = project.catalog().load(project.spec()).scan().to_arrow()
    return rows.num_rows, set(rows.column("sequence_number").to_pylist())


def offload_props(project) -> dict[str, str]:
    """The watermark and the cumulative counters: every offload.* property but maintenance's."""
    props = project.catalog().load(project.spec()).properties
    return {k: v for k, v in props.items() if k.startswith("offload.") and "maintenance" not in k}


def day_partitions(project) -> int:
    stamps = project.catalog().load(project.spec()).scan().to_arrow().column("exchange_timestamp")
    return len({ts.value // (DAY * 1_000_000) for ts in stamps})


def files_on_disk(project) -> set[str]:
    """Data files and manifests (table metadata JSON files are never orphans)."""
    return {
        str(p)
        for p in (project.dir / "warehouse").rglob("*")
        if p.is_file() and not p.name.endswith(".metadata.json")
    }


def test_compaction_and_expiry_keep_every_row_and_the_watermark(project):
    configure(project, target_file_size_bytes=1_000_000)
    project.seed(3_000, span_seconds=3 * DAY)  # three day partitions
    assert project.offload().commits == 30
    count, keys = rows_and_keys(project)
    props = offload_props(project)
    assert count == len(keys) == 3_000 and props["offload.rows-total"] == "3000"
    table = project.catalog().load(project.spec())
    assert len(table.snapshots()) == 30 and len(live_data_files(table)) >= 30

    # default retention (7 days): every snapshot is younger, none expires; files are compacted
    first = project.maintain()
    assert (first.snapshots_expired, first.orphans_removed) == (0, 0)
    assert first.snapshots_after == 31  # the compaction snapshot
    days = day_partitions(project)
    assert first.data_files_before >= 30 and first.data_files_after == days  # one file per day
    compacted_days = first.partitions_compacted
    assert first.files_compacted == first.data_files_before - (days - compacted_days)
    assert first.small_file_ratio_before > 0.9 and first.small_file_ratio_after == 0.0
    assert rows_and_keys(project) == (count, keys)
    assert offload_props(project) == props
    # the replaced small files are still referenced by the retained snapshots
    referenced = referenced_files(project.catalog().load(project.spec()))
    assert files_on_disk(project) <= referenced

    compacted = project.catalog().load(project.spec()).current_snapshot().snapshot_id

    # retention 0, keep 5: everything but the newest five snapshots expires, and the files
    # only the expired snapshots referenced are removed
    configure(project, snapshot_retention_days=0, min_snapshots_to_keep=5)
    second = project.maintain()
    assert (second.snapshots_before, second.snapshots_after) == (31, 5)
    assert second.snapshots_expired == 26 and second.files_compacted == 0
    assert second.orphans_removed > 0 and second.orphan_bytes_removed > 0
    table = project.catalog().load(project.spec())
    assert len(table.snapshots()) == 5
    assert table.current_snapshot().snapshot_id == compacted  # nothing new to compact
    assert files_on_disk(project) <= referenced_files(table)
    assert rows_and_keys(project) == (count, keys)
    assert offload_props(project) == props
    assert float(table.properties[MAINTENANCE_TS]) == pytest.approx(second.finished_at, abs=0.001)
    assert project.reconcile().ok

    # offloads carry on from the untouched watermark
    project.seed(500, span_seconds=600)
    assert project.offload().rows == 500
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == 3_500


def test_when_the_watermark_advanced_outlives_the_expiry_of_its_snapshot(project):
    """Expiry keeping only a compaction snapshot leaves no offload snapshot behind; the time the
    watermark last moved (``offload_watermark_advanced_timestamp_seconds``) stays known."""
    configure(project)
    project.seed(1_000, span_seconds=DAY // 2)
    started_ms = time.time() * 1000
    assert project.offload().commits == 10
    handle = open_table(project.spec(), project.catalog())
    advanced = observe(handle, now_us=int(time.time() * 1e6)).watermark_advanced_ms
    assert advanced is not None and started_ms <= advanced <= time.time() * 1000

    configure(project, snapshot_retention_days=0, min_snapshots_to_keep=1)
    result = project.maintain()
    assert result.files_compacted > 0 and result.snapshots_after == 1
    (kept,) = project.catalog().load(project.spec()).snapshots()
    assert not is_offload_commit(kept.summary.additional_properties)  # the compaction
    assert observe(handle, now_us=int(time.time() * 1e6)).watermark_advanced_ms == advanced


def test_orphan_files_of_a_killed_attempt_are_removed_and_referenced_files_stay(project):
    configure(project, batch_rows=1_000)
    project.seed(2_000)
    assert project.offload().commits == 2
    before_crash = files_on_disk(project)
    project.seed(1_000)
    code, _ = worker_result(project.worker(failpoint="append.after"))
    assert code == -signal.SIGKILL
    orphans = files_on_disk(project) - before_crash
    assert any(o.endswith(".parquet") for o in orphans), "the killed attempt wrote no data files"
    assert not orphans & referenced_files(project.catalog().load(project.spec()))

    # too young: a writer on another host could still be about to commit them
    configure(project, batch_rows=1_000, orphan_min_age_seconds=3600)
    young = project.maintain()
    assert young.orphans_removed == 0 and orphans <= files_on_disk(project)

    configure(project, batch_rows=1_000)
    on_disk = files_on_disk(project)
    result = project.maintain()
    removed = on_disk - files_on_disk(project)
    assert removed == orphans
    assert result.orphans_removed == len(orphans)
    table = project.catalog().load(project.spec())
    for path in referenced_files(table):
        assert Path(path).exists(), path
    assert table.scan().to_arrow().num_rows == 2_000
    verify = project.cli("verify", "--table", TABLE)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    code, out = worker_result(project.worker())
    assert code == 0 and out["rows"] == 1_000
    assert project.reconcile().ok


def test_a_commit_by_another_writer_fails_maintenance_with_commit_conflict(project):
    configure(project)
    project.seed(1_000)
    project.offload()
    stale = project.catalog().load(project.spec())
    project.seed(300)
    project.offload()  # another writer commits after maintenance loaded the table
    props = offload_props(project)
    with pytest.raises(CommitConflictError, match="another writer committed"):
        compact_and_expire(project.spec(), stale, project.config.maintenance, now=time.time())
    table = project.catalog().load(project.spec())
    assert MAINTENANCE_TS not in table.properties
    assert offload_props(project) == props
    check = project.reconcile()
    assert check.ok and check.iceberg_rows == 1_300
    # the files the failed compaction wrote are orphans for the next maintenance
    result = project.maintain()
    assert result.orphans_removed > 0
    assert files_on_disk(project) <= referenced_files(project.catalog().load(project.spec()))
    assert project.reconcile().ok


def wait_for_lock_holder(project, pid: int) -> None:
    lock = project.config.run.lock_dir / f"{TABLE}.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip() == str(pid)):
        assert time.monotonic() < deadline, "the other process never took the table lock"
        time.sleep(0.05)


def test_maintenance_waits_for_an_offload_of_the_table_and_gives_up_with_commit_conflict(project):
    configure(project)
    project.seed(1_000)
    project.offload()
    project.seed(500)
    offload = project.worker(failpoint="plan~4000")  # holds the lock while it sleeps
    wait_for_lock_holder(project, offload.pid)
    write_config(
        project.dir,
        run={"batch_rows": 100, "lock_dir": "locks", "lock_timeout_seconds": 0.2},
        maintenance={"orphan_min_age_seconds": 0},
    )
    with pytest.raises(CommitConflictError, match="held the table lock"):
        project.maintain()
    code, out = worker_result(offload)
    assert code == 0 and out["rows"] == 500
    assert MAINTENANCE_TS not in project.catalog().load(project.spec()).properties


def test_an_offload_waits_for_maintenance_of_the_table_and_gives_up_with_commit_conflict(
    project,
):
    configure(project)
    project.seed(1_000)
    project.offload()
    project.seed(500)
    env = {**os.environ, "OFFLOAD_FAILPOINT": "maintain.locked~4000"}
    maintenance = subprocess.Popen(
        [sys.executable, "-m", "offload_pipeline.cli", "--config", str(project.config_path)]
        + ["maintain", "--table", TABLE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_lock_holder(project, maintenance.pid)
    code, out = worker_result(project.worker(lock_timeout_seconds=0.2))
    assert code == 3 and out["error_type"] == "commit_conflict", out
    stdout, stderr = maintenance.communicate(timeout=120)
    assert maintenance.returncode == 0, stderr[-3000:]
    assert f"{TABLE}: ok snapshots=" in stdout
    code, out = worker_result(project.worker())
    assert code == 0 and out["rows"] == 500
    assert project.reconcile().ok


def test_a_killed_maintenance_changes_nothing_and_the_next_one_cleans_up(project):
    configure(project)
    project.seed(2_000, span_seconds=2 * DAY)
    project.offload()
    count_keys, props = rows_and_keys(project), offload_props(project)
    snapshots = len(project.catalog().load(project.spec()).snapshots())
    on_disk = files_on_disk(project)
    crashed = project.cli("maintain", "--table", TABLE, failpoint="maintain.commit.before")
    assert crashed.returncode == -signal.SIGKILL
    table = project.catalog().load(project.spec())
    assert len(table.snapshots()) == snapshots and MAINTENANCE_TS not in table.properties
    assert files_on_disk(project) - on_disk, "the killed compaction wrote no files"
    assert rows_and_keys(project) == count_keys and offload_props(project) == props
    done = project.cli("maintain", "--table", TABLE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "orphans_removed=0" not in done.stdout
    assert files_on_disk(project) <= referenced_files(project.catalog().load(project.spec()))
    assert rows_and_keys(project) == count_keys and offload_props(project) == props


def test_maintenance_ops_share_their_tables_offload_pools_and_run_on_a_schedule(project):
    configure(project, cron="15 2 * * *")
    defs = build_definitions(project.config)
    job = defs.resolve_job_def(MAINTENANCE_JOB)
    for table in DEMO_TABLES:
        assert job.graph.node_named(op_name(table)).definition.pool == pool_name(table)
        asset = defs.resolve_assets_def(table)
        assert asset.op.pool == pool_name(table)
    schedule = defs.resolve_schedule_def(MAINTENANCE_SCHEDULE)
    assert (schedule.cron_schedule, schedule.job_name) == ("15 2 * * *", MAINTENANCE_JOB)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    write_config(project.dir, schedule={"enabled": False})
    stopped = build_definitions(project.config).resolve_schedule_def(MAINTENANCE_SCHEDULE)
    assert stopped.cron_schedule == "30 3 * * *"
    assert stopped.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_maintenance_job_runs_on_the_instance_and_its_time_survives_a_pushgateway_restart(
    project, pushgateway
):
    configure(project)
    project.seed(1_000, span_seconds=2 * DAY)
    project.offload()
    config = project.config
    with dg.DagsterInstance.get() as instance:
        outcomes = run_maintenance(build_definitions(config), config, instance, [])
        runs = instance.get_runs()
    by_table = {o.table: o for o in outcomes}
    assert [r.job_name for r in runs] == [MAINTENANCE_JOB]
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert all(o.success for o in outcomes)
    m = by_table[TABLE].metadata
    assert m["data_files_before"] > m["data_files_after"] == day_partitions(project)
    assert m["snapshots_after"] == m["snapshots_before"] + 1
    assert m["small_file_ratio_before"] > 0.9 and m["small_file_ratio_after"] == 0.0
    assert not by_table[DEMO_TABLES[1]].metadata["table_exists"]  # never offloaded: skipped
    recorded = float(project.catalog().load(project.spec()).properties[MAINTENANCE_TS])
    metric = "offload_last_maintenance_timestamp_seconds"
    assert pushed(pushgateway, metric, table=TABLE) == pytest.approx(recorded, abs=0.001)
    assert pushed(pushgateway, metric, table=DEMO_TABLES[1]) is None

    # an empty Pushgateway gets it back from the Iceberg property with one sensor tick
    assert push.delete_group(pushgateway.url, push.group_key(project.config.pipeline, TABLE))
    assert pushed(pushgateway, metric, table=TABLE) is None
    tick = project.cli("push-metrics")
    assert tick.returncode == 0, tick.stderr[-3000:]
    assert pushed(pushgateway, metric, table=TABLE) == pytest.approx(recorded, abs=0.001)
    assert pushed(pushgateway, "offload_iceberg_small_file_ratio", table=TABLE) == 0.0
    files = len(live_data_files(project.catalog().load(project.spec())))
    assert pushed(pushgateway, "offload_iceberg_data_files", table=TABLE) == files
