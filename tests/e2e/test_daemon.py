"""The metrics sensor under a real dagster-daemon: it ticks on its own, and a killed and
restarted daemon continues its counters from the stored cursor (never lower, never double)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, write_config
from tests.e2e.test_metrics import value
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e
TABLE = DEMO_TABLES[0]


def start_daemon(project, log_path):
    env = {**os.environ, "OFFLOAD_CONFIG": str(project.config_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(ROOT / "workspace.yaml")],
        env=env,
        cwd=ROOT,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate, timeout: float, what: str, log_path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; daemon log:\n" + log_path.read_text()[-3000:]
            )
        time.sleep(1)


def test_daemon_ticks_the_sensor_and_a_restart_keeps_the_counters(project, pushgateway, tmp_path):
    log_path = tmp_path / "daemon.log"
    # a scheduled cycle at a quarter-hour boundary would add runs this test does not expect
    write_config(project.dir, schedule={"enabled": False})
    project.seed(500, table=TABLE)
    assert project.cli("run", "--table", TABLE).returncode == 0
    daemon = start_daemon(project, log_path)
    try:
        # the tick pushes the table groups first and the heartbeat last: wait for both
        wait_for(
            lambda: (
                value(pushgateway, "offload_runs_total", table=TABLE, status="success") == 1
                and value(pushgateway, "offload_heartbeat_timestamp_seconds") is not None
            ),
            120,
            "the first sensor tick",
            log_path,
        )
        first_beat = value(pushgateway, "offload_heartbeat_timestamp_seconds")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()

        project.seed(100, table=TABLE)
        assert project.cli("run", "--table", TABLE).returncode == 0
        daemon = start_daemon(project, log_path)
        wait_for(
            lambda: (value(pushgateway, "offload_heartbeat_timestamp_seconds") or 0) > first_beat,
            120,
            "a tick of the restarted daemon",
            log_path,
        )
        wait_for(
            lambda: value(pushgateway, "offload_runs_total", table=TABLE, status="success") == 2,
            60,
            "the second run to be counted",
            log_path,
        )
        # another tick must not count anything again
        beat = value(pushgateway, "offload_heartbeat_timestamp_seconds")
        wait_for(
            lambda: (value(pushgateway, "offload_heartbeat_timestamp_seconds") or 0) > beat,
            90,
            "one more tick",
            log_path,
        )
        assert value(pushgateway, "offload_runs_total", table=TABLE, status="success") == 2
        assert value(pushgateway, "offload_rows_total", table=TABLE) == 600
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
