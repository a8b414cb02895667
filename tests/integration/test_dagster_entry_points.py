"""Every entry point of an offload and a backfill is a Dagster run: the asset's own Materialize
(``dagster asset materialize``, what the UI launches) offloads at once, and
``offload-pipeline backfill`` is one tagged run of the table's days asset that ``status`` agrees
with."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from offload_pipeline.core.window import MICROS, iso
from offload_pipeline.defs.eventlog import latest_runs
from offload_pipeline.defs.jobs import days_key
from tests.conftest import ROOT
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]


def test_materialize_select_offloads_everything_above_the_watermark(project):
    project.seed(1_500, span_seconds=2 * 86_400)
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "--select", TABLE]
        + ["-m", "offload_pipeline.definitions"],
        env={**os.environ, "OFFLOAD_CONFIG": str(project.config_path)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert project.iceberg_rows() == 1_500
    assert project.reconcile().ok
    with dg.DagsterInstance.get() as instance:
        # an offload attempt like a scheduled one: the metrics read it back
        assert TABLE in latest_runs(instance, [TABLE])
        days = instance.get_materialized_partitions(days_key(TABLE))
    today = datetime.now(UTC)
    assert {(today - timedelta(days=n)).strftime("%Y-%m-%d") for n in (0, 1)} <= days


def test_backfill_verb_is_a_tagged_dagster_run_that_status_agrees_with(project):
    project.seed(1_000, span_seconds=3 * 86_400)
    assert project.cli("run", "--table", TABLE).returncode == 0
    wm = project.state().watermark.cursor.ts
    start, end = iso(wm - 2 * 86_400 * MICROS), iso(wm - 86_400 * MICROS)
    out = project.cli("backfill", "--table", TABLE, "--start", start, "--end", end)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{TABLE}: ok range=[{start}, {end}) rows_written=" in out.stdout
    status = json.loads(project.cli("status", "--json", "--table", TABLE).stdout)["tables"][0]
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(dg.RunsFilter(tags={"offload/mode": "backfill"}))
        record = instance.fetch_materializations(days_key(TABLE), limit=1).records[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["offload/table"] == TABLE
    assert run.tags["offload/range"] == f"[{start}, {end})"
    # one run over the days the range touches, each day materialized by it
    assert run.tags["dagster/asset_partition_range_start"] == start[:10]
    assert run.tags["dagster/asset_partition_range_end"] == end[:10]
    assert record.run_id == run.run_id
    metadata = record.asset_materialization.metadata
    assert metadata["snapshot_id"].value == str(status["snapshot_id"])
    assert metadata["range"].value == f"[{start}, {end})"


def test_a_refused_backfill_is_a_failed_run_and_exit_1(project):
    project.seed(200)
    assert project.cli("run", "--table", TABLE).returncode == 0
    start = iso(project.state().watermark.cursor.ts - 3_600 * MICROS)
    out = project.cli("backfill", "--table", TABLE, "--start", start, "--end", "2999-01-01")
    assert out.returncode == 1
    assert "error_type=config_invalid" in out.stderr
    assert "beyond the committed watermark" in out.stderr
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(dg.RunsFilter(tags={"offload/mode": "backfill"}))
    assert run.status == dg.DagsterRunStatus.FAILURE
