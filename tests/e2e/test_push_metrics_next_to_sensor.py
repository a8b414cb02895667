"""Why the runbooks keep `offload-pipeline push-metrics` away from a ticking metrics sensor.

Both push the same Pushgateway groups, but the sensor pushes the totals of its cursor and the CLI
recomputes them from the event log as it is now: the two can disagree, and the later push wins.
Here a run deleted from the Dagster instance (Runs → Delete) makes the CLI push a smaller
counter than the sensor did, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import dagster as dg
import pytest

from tests.e2e.test_metrics import cycle, tick, value
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e

TABLE = DEMO_TABLES[0]


def successes(pushgateway) -> float | None:
    return value(pushgateway, "offload_runs_total", table=TABLE, status="success")


def test_push_metrics_next_to_the_sensor_can_take_a_counter_back(project, pushgateway):
    for _ in range(2):
        project.seed(100, table=TABLE)
        assert cycle(project, [TABLE])[0].success
    sensor = tick(project)  # the sensor's cursor has both runs folded in
    assert successes(pushgateway) == 2

    with dg.DagsterInstance.get() as instance:
        oldest = instance.get_runs()[-1]
        instance.delete_run(oldest.run_id)

    pushed = project.cli("push-metrics")
    assert pushed.returncode == 0, pushed.stderr
    assert successes(pushgateway) == 1  # lower than before: a counter reset to Prometheus

    tick(project, sensor)  # the sensor's next tick pushes its own total again
    assert successes(pushgateway) == 2
