"""What keeps the metrics tick bounded with many tables and a long history: run history folded in
batches across ticks, and a table's last offload success read without its whole lookback."""

import sqlite3

import dagster as dg
import pytest

from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.eventlog import last_offload_success
from offload_pipeline.defs.jobs import BACKFILL, INCREMENTAL
from offload_pipeline.defs.metadata import MetadataKey
from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.defs.runs import run_cycle
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration


def test_a_reset_cursor_catches_up_in_batches_to_the_totals_of_one_fold(project):
    for table in DEMO_TABLES:
        project.seed(100, table)
    config = project.config
    defs = build_definitions(config)
    with dg.DagsterInstance.get() as instance:
        assert all(o.success for o in run_cycle(defs, config, instance, []))
        with sqlite3.connect(project.hot_db) as conn:  # one failed cycle: a RUN_FAILURE event
            conn.execute(f"ALTER TABLE {DEMO_TABLES[1]} RENAME TO away")
        assert not all(o.success for o in run_cycle(defs, config, instance, []))
        with sqlite3.connect(project.hot_db) as conn:
            conn.execute(f"ALTER TABLE away RENAME TO {DEMO_TABLES[1]}")
        assert all(o.success for o in run_cycle(defs, config, instance, []))

        whole = MetricsState()
        assert metrics_tick(instance, config, whole, now=1.0).runs == 3

        batched = MetricsState()
        folded = [metrics_tick(instance, config, batched, now=1.0, max_runs=2).runs]
        folded.append(metrics_tick(instance, config, batched, now=1.0, max_runs=2).runs)
        folded.append(metrics_tick(instance, config, batched, now=1.0, max_runs=2).runs)

    assert folded == [2, 1, 0]
    assert batched.to_cursor() == whole.to_cursor()
    assert sum(whole.cycles.statuses.values()) == 3
    assert whole.cycles.statuses["partial"] == 1
    assert whole.tables[DEMO_TABLES[1]].errors


def test_the_last_offload_success_skips_later_backfill_materializations(project):
    key = dg.AssetKey(DEMO_TABLES[0])

    def materialize(mode: str) -> float:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, metadata={MetadataKey.MODE: mode})
        )
        return instance.fetch_materializations(key, limit=1).records[0].timestamp

    with dg.DagsterInstance.get() as instance:
        assert last_offload_success(instance, DEMO_TABLES[0]) is None
        first_backfill = materialize(BACKFILL)
        assert last_offload_success(instance, DEMO_TABLES[0]) is None
        offloaded = materialize(INCREMENTAL)
        assert last_offload_success(instance, DEMO_TABLES[0]) == offloaded
        materialize(BACKFILL)
        materialize(BACKFILL)
        assert last_offload_success(instance, DEMO_TABLES[0]) == offloaded
        assert offloaded > first_backfill
