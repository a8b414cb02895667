"""Hooks and sensors against a real Pushgateway and a real Prometheus: every metric true."""

import json
import logging
import sqlite3
import subprocess
import time
import urllib.request

import dagster as dg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.metrics import MetricsState, metrics_tick
from offload_pipeline.defs.resources import OffloadResource
from offload_pipeline.defs.runs import run_cycle, run_maintenance
from offload_pipeline.defs.sensors import offload_metrics_sensor
from offload_pipeline.demo.stack import start_pushgateway
from offload_pipeline.metrics.contract import JOB, METRICS
from tests.conftest import promql
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.e2e
BINANCE, KRAKEN, COINBASE = DEMO_TABLES


def samples(pushgateway) -> dict[tuple[str, frozenset], float]:
    """Every sample of this job in the Pushgateway: (name, labels) -> value."""
    with urllib.request.urlopen(f"{pushgateway.url}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("job") == JOB:
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(pushgateway, name: str, **labels: str) -> float | None:
    wanted = set(labels.items()) | {("job", JOB)}
    found = [v for (n, ls), v in samples(pushgateway).items() if n == name and wanted <= ls]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def cycle(project, tables=()):
    config = project.config
    with dg.DagsterInstance.get() as instance:
        return run_cycle(build_definitions(config), config, instance, list(tables))


def maintenance(project, tables=()):
    config = project.config
    with dg.DagsterInstance.get() as instance:
        return run_maintenance(build_definitions(config), config, instance, list(tables))


def tick(project, state: MetricsState | None = None) -> MetricsState:
    state = state or MetricsState()
    with dg.DagsterInstance.get() as instance:
        metrics_tick(instance, project.config, state)
    return state


def break_table(project, table: str) -> None:
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_away")


def mend_table(project, table: str) -> None:
    with sqlite3.connect(project.hot_db) as conn:
        conn.execute(f"ALTER TABLE {table}_away RENAME TO {table}")


def test_every_contract_metric_reaches_the_pushgateway_and_prometheus(
    project, prometheus, pushgateway
):
    for table in DEMO_TABLES:
        project.seed(2_000, table=table)
    assert all(o.success for o in cycle(project))
    project.seed(500, table=BINANCE)
    break_table(project, KRAKEN)  # source_query
    with sqlite3.connect(project.hot_db) as conn:  # schema_mismatch
        conn.execute(f"ALTER TABLE {COINBASE} ADD COLUMN payload BLOB")
    outcomes = {o.table: o for o in cycle(project)}
    assert outcomes[BINANCE].success
    assert (outcomes[KRAKEN].error_type, outcomes[COINBASE].error_type) == (
        "source_query",
        "schema_mismatch",
    )
    tick(project)

    present = {name for name, _ in samples(pushgateway)}
    for metric in METRICS:
        base = metric.name
        names = (
            {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
            if metric.kind == "histogram"
            else {base}
        )
        assert names <= present, f"{metric.name} missing from the Pushgateway"
    # labels: per table with table/layer, no instance label anywhere
    assert (
        value(pushgateway, "offload_runs_total", table=BINANCE, layer="bronze", status="success")
        == 2
    )
    assert value(pushgateway, "offload_errors_total", table=KRAKEN, error_type="source_query") == 1
    assert (
        value(pushgateway, "offload_errors_total", table=COINBASE, error_type="schema_mismatch")
        == 1
    )
    assert value(pushgateway, "offload_last_run_success", table=KRAKEN) == 0
    assert value(pushgateway, "offload_consecutive_failures", table=KRAKEN) == 1
    assert value(pushgateway, "offload_cycles_total", status="success") == 1
    assert value(pushgateway, "offload_cycles_total", status="partial") == 1
    assert value(pushgateway, "offload_tables_configured") == 3
    assert all(dict(ls).get("instance", "") == "" for _, ls in samples(pushgateway))

    # the same values through Prometheus' HTTP API
    deadline = time.monotonic() + 30
    while not promql(prometheus, "offload_heartbeat_timestamp_seconds"):
        assert time.monotonic() < deadline, "Prometheus never scraped the Pushgateway"
        time.sleep(0.5)
    for metric in METRICS:
        query = f"{metric.name}_count" if metric.kind == "histogram" else metric.name
        assert promql(prometheus, query), f"{query} not in Prometheus"
    (series,) = promql(prometheus, f'offload_rows_total{{table="{BINANCE}"}}')
    assert series["metric"]["job"] == JOB and series["metric"]["layer"] == "bronze"
    assert float(series["value"][1]) == project.iceberg_rows(BINANCE) == 2_500


def test_counters_are_exact_and_survive_sensor_and_pushgateway_restarts(
    project, tmp_path, monkeypatch
):
    gateway = start_pushgateway(tmp_path / "pg1")
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", gateway.url)
    try:
        project.seed(1_000, table=BINANCE)
        k, f = 0, 0
        for round_ in range(3):
            project.seed(100, table=BINANCE)
            assert cycle(project, [BINANCE])[0].success
            k += 1
            if round_ < 2:
                break_table(project, BINANCE)
                assert not cycle(project, [BINANCE])[0].success
                f += 1
                mend_table(project, BINANCE)
        cursor = tick(project).to_cursor()
        assert value(gateway, "offload_runs_total", table=BINANCE, status="success") == k
        assert value(gateway, "offload_runs_total", table=BINANCE, status="failure") == f
        errors = sum(
            v
            for (n, ls), v in samples(gateway).items()
            if n == "offload_errors_total" and ("table", BINANCE) in ls
        )
        assert errors == f
        assert (
            value(gateway, "offload_rows_total", table=BINANCE) == project.iceberg_rows() == 1_300
        )
        assert value(gateway, "offload_duration_seconds_count", table=BINANCE) == k + f

        # the daemon restarts: the sensor resumes from its stored cursor, nothing is counted twice
        restarted = MetricsState.from_cursor(cursor)
        tick(project, restarted)
        assert value(gateway, "offload_runs_total", table=BINANCE, status="success") == k

        # the Pushgateway restarts empty (no persistence): one tick restores every counter
        port = gateway.url.rsplit(":", 1)[1]
        gateway.stop()
        gateway = start_pushgateway(tmp_path / "pg2", port=int(port))
        assert value(gateway, "offload_runs_total", table=BINANCE, status="success") is None
        tick(project, restarted)
        assert value(gateway, "offload_runs_total", table=BINANCE, status="success") == k
        assert value(gateway, "offload_runs_total", table=BINANCE, status="failure") == f
        assert value(gateway, "offload_rows_total", table=BINANCE) == 1_300
    finally:
        gateway.stop()


def test_hooks_push_last_run_gauges_at_once(project, pushgateway):
    project.seed(300, table=BINANCE)
    assert cycle(project, [BINANCE])[0].success
    # no sensor tick yet: the gauges come from the hook
    assert value(pushgateway, "offload_last_run_success", table=BINANCE) == 1
    assert value(pushgateway, "offload_last_run_rows", table=BINANCE) == 300
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 0
    success_at = value(pushgateway, "offload_last_success_timestamp_seconds", table=BINANCE)
    assert abs(success_at - time.time()) < 60
    break_table(project, BINANCE)
    for expected in (1, 2, 3):
        cycle(project, [BINANCE])
        assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == expected
        assert value(pushgateway, "offload_last_run_success", table=BINANCE) == 0
        assert (
            value(pushgateway, "offload_last_success_timestamp_seconds", table=BINANCE)
            == success_at
        )
    mend_table(project, BINANCE)
    cycle(project, [BINANCE])
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 0
    assert (
        value(pushgateway, "offload_runs_total", table=BINANCE, status="success") is None
    )  # sensor-owned


def test_lag_follows_the_feed(project, pushgateway):
    project.seed(1_000, table=BINANCE, span_seconds=600)
    cycle(project, [BINANCE])
    tick(project)
    assert value(pushgateway, "offload_lag_seconds", table=BINANCE) == 0  # feed stopped, caught up
    watermark = value(pushgateway, "offload_watermark_timestamp_seconds", table=BINANCE)
    time.sleep(1.1)
    project.seed(50, table=BINANCE, span_seconds=1)  # the feed resumes
    tick(project)
    source_max = value(pushgateway, "offload_source_max_timestamp_seconds", table=BINANCE)
    lag = value(pushgateway, "offload_lag_seconds", table=BINANCE)
    assert lag == pytest.approx(source_max - watermark) and lag > 1
    cycle(project, [BINANCE])
    tick(project)
    assert value(pushgateway, "offload_lag_seconds", table=BINANCE) == 0


def test_a_table_that_never_ran_has_no_lag_only_its_source_max(project, pushgateway):
    project.seed(10, table=KRAKEN)
    tick(project)
    assert value(pushgateway, "offload_source_max_timestamp_seconds", table=KRAKEN) is not None
    assert value(pushgateway, "offload_lag_seconds", table=KRAKEN) is None
    assert value(pushgateway, "offload_watermark_timestamp_seconds", table=KRAKEN) is None


def test_pushgateway_down_never_fails_an_offload(project, monkeypatch, caplog):
    from offload_pipeline.demo.stack import free_port

    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    project.seed(200, table=BINANCE)
    with caplog.at_level(logging.WARNING):
        assert cycle(project, [BINANCE])[0].success
        report = None
        with dg.DagsterInstance.get() as instance:
            report = metrics_tick(instance, project.config, MetricsState())
    assert report.failed_pushes == 4 and report.pushed == 0
    assert "metrics push" in caplog.text and "failed" in caplog.text


def test_removed_table_has_its_group_deleted(project, pushgateway, tmp_path):
    for table in DEMO_TABLES:
        project.seed(10, table=table)
    tick(project)
    assert value(pushgateway, "offload_source_max_timestamp_seconds", table=COINBASE) is not None
    from tests.conftest import write_config

    write_config(tmp_path, tables=[{"name": BINANCE}, {"name": KRAKEN}])
    tick(project)
    assert value(pushgateway, "offload_source_max_timestamp_seconds", table=COINBASE) is None
    assert value(pushgateway, "offload_source_max_timestamp_seconds", table=KRAKEN) is not None
    assert value(pushgateway, "offload_tables_configured") == 2


def test_two_pipelines_share_a_pushgateway_and_delete_only_their_own_groups(pushgateway, tmp_path):
    from tests.conftest import Project, write_config

    def deployment(pipeline: str, tables: list[str]) -> Project:
        directory = tmp_path / pipeline
        directory.mkdir(exist_ok=True)
        config = write_config(
            directory, metrics={"pipeline": pipeline}, tables=[{"name": t} for t in tables]
        )
        return Project(dir=directory, config_path=config)

    red, blue = deployment("red", DEMO_TABLES), deployment("blue", DEMO_TABLES)
    for table in DEMO_TABLES:
        red.seed(10, table=table)
        blue.seed(10, table=table)
    tick(red)
    tick(blue)

    def tables_of(pipeline: str) -> set[str]:
        name = "offload_source_max_timestamp_seconds"
        return {
            dict(labels)["table"]
            for (n, labels), _ in samples(pushgateway).items()
            if n == name and ("pipeline", pipeline) in labels
        }

    # the same table names, one group per pipeline and table
    assert tables_of("red") == tables_of("blue") == set(DEMO_TABLES)
    assert value(pushgateway, "offload_tables_configured", pipeline="red") == 3

    # blue drops two tables: only blue's groups of them go
    deployment("blue", [BINANCE])
    tick(blue)
    assert tables_of("blue") == {BINANCE}
    assert tables_of("red") == set(DEMO_TABLES)
    assert value(pushgateway, "offload_tables_configured", pipeline="blue") == 1
    assert value(pushgateway, "offload_tables_configured", pipeline="red") == 3

    # red drops another: blue's remaining group stays
    deployment("red", [KRAKEN])
    tick(red)
    assert tables_of("red") == {KRAKEN}
    assert tables_of("blue") == {BINANCE}
    assert value(pushgateway, "offload_heartbeat_timestamp_seconds", pipeline="blue") is not None


def test_only_the_default_pipeline_deletes_unlabelled_groups(project, pushgateway, tmp_path):
    from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

    from tests.conftest import write_config

    # groups as an earlier version pushed them, without a pipeline label
    for key in ({"table": BINANCE}, {}):
        registry = CollectorRegistry()
        Gauge("offload_tables_configured", "old", registry=registry).set(3)
        pushadd_to_gateway(pushgateway.url, job=JOB, registry=registry, grouping_key=key)

    def unlabelled() -> int:
        return sum(
            1
            for (n, labels), _ in samples(pushgateway).items()
            if n == "push_time_seconds" and "pipeline" not in dict(labels)
        )

    assert unlabelled() == 2
    write_config(project.dir, metrics={"pipeline": "red"})
    tick(project)
    assert unlabelled() == 2  # they may belong to another deployment
    write_config(project.dir)
    tick(project)
    assert unlabelled() == 0
    assert value(pushgateway, "offload_tables_configured", pipeline="default") == 3


def test_a_killed_run_counts_as_run_failure(project, pushgateway):
    project.seed(20_000, table=BINANCE)
    killed = project.cli("run", "--table", BINANCE, failpoint="append.after")
    assert killed.returncode == -9
    # the next run reclaims the dead one (marks it failed); the sensor then counts it
    assert project.cli("run", "--table", BINANCE).returncode == 0
    tick(project)
    assert value(pushgateway, "offload_errors_total", table=BINANCE, error_type="run_failure") == 1
    assert value(pushgateway, "offload_runs_total", table=BINANCE, status="success") == 1
    assert value(pushgateway, "offload_cycles_total", status="failed") == 1


def test_the_sensor_runs_the_tick_and_keeps_its_cursor(project, pushgateway):
    project.seed(100, table=BINANCE)
    cycle(project, [BINANCE])
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            resources={"offload": OffloadResource(config_path=str(project.config_path))},
        )
        result = offload_metrics_sensor(context)
        assert isinstance(result, dg.SkipReason)
        assert "folded 1 finished run" in result.skip_message
        assert MetricsState.from_cursor(context.cursor).tables[BINANCE].success == 1
    assert value(pushgateway, "offload_heartbeat_timestamp_seconds") == pytest.approx(
        time.time(), abs=30
    )


def test_pushed_exposition_passes_promtool_check_metrics(project, pushgateway):
    project.seed(100, table=BINANCE)
    cycle(project, [BINANCE])
    tick(project)
    with urllib.request.urlopen(f"{pushgateway.url}/metrics", timeout=5) as r:
        text = r.read().decode()
    ours = "\n".join(block for block in text.split("# HELP ") if block.startswith("offload_"))
    exposition = "".join(
        f"# HELP {block}" for block in text.split("# HELP ") if block.startswith("offload_")
    )
    assert ours
    out = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "", out


LAST_RUN_GAUGES = (
    "offload_last_run_timestamp_seconds",
    "offload_last_success_timestamp_seconds",
    "offload_last_run_success",
    "offload_last_run_duration_seconds",
    "offload_last_run_rows",
    "offload_consecutive_failures",
)
# what no durable state can give back: the Pushgateway's own push times, the sensor's clock
PER_PUSH = ("push_time_seconds", "push_failure_time_seconds", "offload_heartbeat_timestamp_seconds")


def corrupt_catalog(project) -> None:
    """Make the SQL catalog unreadable: its SQLite file replaced by garbage, the real one kept."""
    path = project.dir / "catalog.db"
    path.rename(path.with_suffix(".away"))
    path.write_bytes(b"this is not a database\n" * 64)


def restore_catalog(project) -> None:
    path = project.dir / "catalog.db"
    path.with_suffix(".away").replace(path)


def with_retries(project, tmp_path) -> None:
    """The config's default retries (3), with a tiny delay so the test stays fast."""
    from tests.conftest import write_config

    write_config(
        tmp_path,
        run={
            "batch_rows": 10_000,
            "lock_dir": "locks",
            "retry": {"max_retries": 3, "delay_seconds": 0.01},
        },
    )
    assert project.config.run.max_retries == 3


def test_a_failed_run_counts_once_in_the_failure_streak_however_often_it_retried(
    project, pushgateway, tmp_path
):
    with_retries(project, tmp_path)
    project.seed(300, table=BINANCE)
    assert cycle(project, [BINANCE])[0].success
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 0
    corrupt_catalog(project)  # catalog_unavailable: retryable, so every retry runs and fails
    for expected in (1, 2):
        (outcome,) = cycle(project, [BINANCE])
        assert not outcome.success and outcome.error_type == "catalog_unavailable"
        assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == expected
    # the retries did run: 2 runs of 4 attempts each
    tick(project)
    assert value(pushgateway, "offload_runs_total", table=BINANCE, status="failure") == 8
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 2
    restore_catalog(project)
    assert cycle(project, [BINANCE])[0].success
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 0
    tick(project)
    assert value(pushgateway, "offload_consecutive_failures", table=BINANCE) == 0


def test_a_restarted_pushgateway_gets_every_series_back_in_one_tick(project, tmp_path, monkeypatch):
    gateway = start_pushgateway(tmp_path / "pg1")
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", gateway.url)
    try:
        for table in DEMO_TABLES:
            project.seed(500, table=table)
        assert all(o.success for o in cycle(project))
        break_table(project, KRAKEN)
        for _ in range(2):
            outcomes = {o.table: o.success for o in cycle(project)}
            assert outcomes == {BINANCE: True, KRAKEN: False, COINBASE: True}
        state = tick(project)
        before = {k: v for k, v in samples(gateway).items() if k[0] not in PER_PUSH}
        assert value(gateway, "offload_consecutive_failures", table=KRAKEN) == 2
        for name in LAST_RUN_GAUGES:
            assert value(gateway, name, table=KRAKEN) is not None, name

        port = int(gateway.url.rsplit(":", 1)[1])
        gateway.stop()
        gateway = start_pushgateway(tmp_path / "pg2", port=port)
        assert samples(gateway) == {}
        tick(project, state)
        after = {k: v for k, v in samples(gateway).items() if k[0] not in PER_PUSH}
        assert after == before
        assert value(gateway, "offload_consecutive_failures", table=KRAKEN) == 2
        assert value(gateway, "offload_last_run_success", table=KRAKEN) == 0
        assert value(gateway, "offload_last_run_rows", table=BINANCE) == 0  # nothing new
    finally:
        gateway.stop()


def test_an_unreadable_catalog_pushes_none_of_the_iceberg_series(project, tmp_path, monkeypatch):
    iceberg_series = (
        "offload_rows_total",
        "offload_late_rows_total",
        "offload_schema_changes_total",
        "offload_watermark_timestamp_seconds",
        "offload_lag_seconds",
        "offload_watermark_advanced_timestamp_seconds",
        "offload_iceberg_snapshots",
        "offload_iceberg_data_files",
        "offload_iceberg_small_file_ratio",
        "offload_last_maintenance_timestamp_seconds",
    )
    gateway = start_pushgateway(tmp_path / "pg1")
    monkeypatch.setenv("OFFLOAD_PUSHGATEWAY_URL", gateway.url)
    try:
        project.seed(700, table=BINANCE)
        assert cycle(project, [BINANCE])[0].success
        state = tick(project)
        pushed = {name: value(gateway, name, table=BINANCE) for name in iceberg_series}
        assert pushed["offload_rows_total"] == 700
        assert all(v is not None for v in pushed.values()), pushed

        corrupt_catalog(project)
        tick(project, state)
        # the values pushed before stay: no zero that Prometheus would read as a counter reset
        assert {name: value(gateway, name, table=BINANCE) for name in iceberg_series} == pushed

        # and an emptied Pushgateway gets none of them while the catalog stays unreadable
        port = int(gateway.url.rsplit(":", 1)[1])
        gateway.stop()
        gateway = start_pushgateway(tmp_path / "pg2", port=port)
        tick(project, state)
        for name in iceberg_series:
            assert value(gateway, name, table=BINANCE) is None, name
        # what does not come from Iceberg is still there
        assert value(gateway, "offload_runs_total", table=BINANCE, status="success") == 1
        assert value(gateway, "offload_source_max_timestamp_seconds", table=BINANCE) is not None
        assert value(gateway, "offload_last_run_success", table=BINANCE) == 1

        restore_catalog(project)
        tick(project, state)
        assert {name: value(gateway, name, table=BINANCE) for name in iceberg_series} == pushed
    finally:
        gateway.stop()


def test_a_row_stamped_a_day_ahead_never_inflates_the_lag(project, pushgateway):
    project.seed(1_000, table=BINANCE, span_seconds=600)
    assert cycle(project, [BINANCE])[0].success
    project.seed(1, table=BINANCE, span_seconds=1, now=time.time() + 86_400)
    cycle(project, [BINANCE])  # nothing due: the future row waits for its time
    tick(project)
    source_max = value(pushgateway, "offload_source_max_timestamp_seconds", table=BINANCE)
    watermark = value(pushgateway, "offload_watermark_timestamp_seconds", table=BINANCE)
    lag = value(pushgateway, "offload_lag_seconds", table=BINANCE)
    assert source_max - time.time() > 86_000
    assert lag == pytest.approx(time.time() - watermark, abs=30) and lag < 120

    out = project.cli("status", "--json", "--table", BINANCE)
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)["tables"]
    assert entry["source_max"] > entry["watermark"]
    assert 0 <= entry["lag_seconds"] < 120


def test_watermark_advanced_is_the_time_of_the_last_offload_commit(project, pushgateway):
    project.seed(500, table=BINANCE)
    started = time.time()
    assert cycle(project, [BINANCE])[0].success
    tick(project)
    advanced = value(pushgateway, "offload_watermark_advanced_timestamp_seconds", table=BINANCE)
    assert started - 1 <= advanced <= time.time()

    # a run with nothing new and a compaction commit nothing that moves the watermark
    assert cycle(project, [BINANCE])[0].success
    assert all(o.success for o in maintenance(project, [BINANCE]))
    tick(project)
    assert (
        value(pushgateway, "offload_watermark_advanced_timestamp_seconds", table=BINANCE)
        == advanced
    )

    project.seed(10, table=BINANCE, span_seconds=1)
    assert cycle(project, [BINANCE])[0].success
    tick(project)
    assert (
        value(pushgateway, "offload_watermark_advanced_timestamp_seconds", table=BINANCE) > advanced
    )


def test_a_running_cycle_shows_its_start_until_it_ends(project, pushgateway, monkeypatch, tmp_path):
    import threading

    project.seed(300, table=BINANCE)
    # the step waits after planning until the test arrives at the same rendezvous
    meet = tmp_path / "meet"
    monkeypatch.setenv("OFFLOAD_FAILPOINT_DIR", str(meet))
    monkeypatch.setenv("OFFLOAD_FAILPOINT", "plan^2")
    before = time.time()
    worker = threading.Thread(target=cycle, args=(project, [BINANCE]))
    worker.start()
    try:
        name = "offload_cycle_running_since_timestamp_seconds"
        deadline = time.monotonic() + 60
        while not value(pushgateway, name):
            assert time.monotonic() < deadline, "the runner pushed no start"
            time.sleep(0.05)
        assert before <= value(pushgateway, name) <= time.time()
        # the metrics tick reads the same start from the event log, while the run still runs
        time.sleep(1)
        tick(project)
        assert worker.is_alive()
        assert before <= value(pushgateway, name) <= time.time()
    finally:
        meet.mkdir(parents=True, exist_ok=True)
        (meet / "plan.test").touch()
        worker.join(120)
    assert not worker.is_alive(), "the cycle hangs:\n" + _stack(worker)
    assert value(pushgateway, name) == 0  # the runner clears it when the cycle ends
    tick(project)
    assert value(pushgateway, name) == 0


def _stack(thread) -> str:
    import sys
    import traceback

    frame = sys._current_frames().get(thread.ident)
    return "".join(traceback.format_stack(frame)) if frame else "(gone)"
