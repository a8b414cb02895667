"""The metrics tick folds a long run history in bounded batches across ticks, to the same totals
as one unbounded fold."""

import sqlite3

import dagster as dg
import pytest

from offload_pipeline.definitions import build_definitions
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
