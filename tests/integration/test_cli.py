"""The ``offload-pipeline`` verbs, run as a user would run them."""

import json
import sqlite3
import subprocess
import sys

import pytest
from pyiceberg.catalog import load_catalog

from offload_pipeline.core.window import MICROS, iso
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration


def test_seed_run_status_verify(project):
    seeded = project.cli("seed", "--rows", "2000")
    assert seeded.returncode == 0, seeded.stderr
    ran = project.cli("run")
    assert ran.returncode == 0, ran.stderr[-3000:]
    for table in DEMO_TABLES:
        assert f"{table}: ok rows=2000" in ran.stdout
    # clean output: no beta warning, and each log line of the core printed once
    assert "Warning" not in ran.stderr, ran.stderr
    committed = [line for line in ran.stderr.splitlines() if ": committed 2000 rows" in line]
    assert len(committed) == 3, ran.stderr

    status = project.cli("status", "--json")
    assert status.returncode == 0
    entries = {t["name"]: t for t in json.loads(status.stdout)["tables"]}
    entry = entries[DEMO_TABLES[0]]
    assert entry["source"] == {
        "kind": "sqlite",
        "uri": f"sqlite:///{project.hot_db}",
        "table": DEMO_TABLES[0],
    }
    assert entry["iceberg_identifier"] == f"cold.{DEMO_TABLES[0]}"
    assert entry["iceberg_rows"] == 2000
    assert entry["watermark"] == entry["source_max"]
    assert entry["lag_seconds"] == 0
    # the catalog entry is enough to open the table without reading the config
    catalog = dict(entry["catalog"])
    table = load_catalog(catalog.pop("name"), **catalog).load_table(entry["iceberg_identifier"])
    assert table.current_snapshot().snapshot_id == entry["snapshot_id"]

    verified = project.cli("verify")
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count(" ok ") == 3


def test_verify_exits_nonzero_on_a_missing_row(project):
    project.cli("seed", "--rows", "500", "--table", DEMO_TABLES[0])
    assert project.cli("run", "--table", DEMO_TABLES[0]).returncode == 0
    with sqlite3.connect(project.hot_db) as conn:
        # a row appearing behind the watermark is missing from Iceberg until backfilled
        conn.execute(
            f"INSERT INTO {DEMO_TABLES[0]} SELECT exchange_timestamp, 999999, symbol, price, "
            "quantity, quote_volume, event_time, kafka_offset, kafka_partition, "
            f"ingestion_timestamp FROM {DEMO_TABLES[0]} LIMIT 1"
        )
    verified = project.cli("verify", "--table", DEMO_TABLES[0])
    assert verified.returncode == 1
    assert "MISMATCH" in verified.stdout and "missing_keys=1" in verified.stdout
    assert "(999999,)" in verified.stdout


def test_run_exits_nonzero_when_a_table_fails(project):
    project.cli("seed", "--rows", "100", "--table", DEMO_TABLES[0])
    ran = project.cli("run")
    assert ran.returncode == 1
    assert f"{DEMO_TABLES[0]}: ok rows=100" in ran.stdout
    assert f"{DEMO_TABLES[1]}: FAILED error_type=source_query" in ran.stderr


def test_status_reports_unreachable_parts_instead_of_failing(project):
    status = project.cli("status", "--json")
    assert status.returncode == 0
    entry = json.loads(status.stdout)["tables"][0]
    assert entry["watermark"] is None and entry["iceberg_rows"] is None
    assert entry["errors"][0]["error_type"] == "source_unavailable"


def test_bad_config_is_one_clear_line(project):
    project.config_path.write_text(
        project.config_path.read_text().replace("tie_breaker", "tiebreak")
    )
    out = project.cli("status")
    assert out.returncode == 1
    error_lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert error_lines == [
        "Error: config_invalid: table 'bronze_trades_binance': cursor: unknown key 'tiebreak' "
        "(allowed: event_time, tie_breaker)"
    ]


def test_unknown_table_is_refused(project):
    out = project.cli("verify", "--table", "bronze_trades_nowhere")
    assert out.returncode == 1
    assert "unknown table 'bronze_trades_nowhere'" in out.stderr


def test_demo_reads_monitoring_configs_beside_the_config_file_or_from_docker_dir(project):
    # the project's directory has no docker/: the default names it, the option overrides it
    default = project.cli("demo")
    assert default.returncode == 1
    assert f"{project.dir / 'docker'} is not a directory" in default.stderr
    elsewhere = project.dir / "elsewhere"
    explicit = project.cli("demo", "--docker-dir", str(elsewhere))
    assert explicit.returncode == 1
    assert f"{elsewhere} is not a directory" in explicit.stderr
    assert not project.hot_db.exists()  # refused before seeding anything


def test_every_verb_has_help(project):
    verbs = ("seed", "generate", "run", "status", "verify", "push-metrics", "demo", "register")
    for verb in verbs:
        out = project.cli(verb, "--help")
        assert out.returncode == 0 and "Usage:" in out.stdout, verb


def test_backfill_repairs_late_rows_and_refuses_the_open_range(project):
    project.seed(1_000, table=DEMO_TABLES[0])
    assert project.cli("run", "--table", DEMO_TABLES[0]).returncode == 0
    wm = project.state().watermark.cursor.ts
    project.seed(200, table=DEMO_TABLES[0], late_fraction=0.5, watermarks={DEMO_TABLES[0]: wm})
    assert project.cli("run", "--table", DEMO_TABLES[0]).returncode == 0
    assert project.cli("verify", "--table", DEMO_TABLES[0]).returncode == 1

    start, end = iso(wm - 3_600 * MICROS), iso(wm)
    args = ("backfill", "--table", DEMO_TABLES[0], "--start", start, "--end", end)
    repaired = project.cli(*args)
    assert repaired.returncode == 0, repaired.stderr
    added = project.state().late_rows_total
    assert f"rows_added={added}" in repaired.stdout and added > 0
    assert project.cli("verify", "--table", DEMO_TABLES[0]).returncode == 0
    again = project.cli(*args)
    assert "rows_added=0" in again.stdout

    beyond = project.cli(
        "backfill", "--table", DEMO_TABLES[0], "--start", start, "--end", "2999-01-01"
    )
    assert beyond.returncode == 1
    assert (
        "error_type=config_invalid" in beyond.stderr
        and "beyond the committed watermark" in beyond.stderr
    )
    garbled = project.cli(
        "backfill", "--table", DEMO_TABLES[0], "--start", "yesterday", "--end", end
    )
    assert (
        garbled.returncode == 1
        and "--start: 'yesterday' is not an ISO-8601 instant" in garbled.stderr
    )


def test_status_and_verify_import_no_dagster(project):
    """The verbs that only read tables start without Dagster (and its storage layer)."""
    assert project.cli("seed", "--rows", "100").returncode == 0
    code = (
        "import sys\n"
        "from offload_pipeline.cli import main\n"
        "for verb in ('status', 'verify'):\n"
        "    try:\n"
        f"        main(['--config', {str(project.config_path)!r}, verb])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(m for m in ('dagster', 'alembic') if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.count(": ") >= len(DEMO_TABLES), out.stdout
    assert out.stderr.splitlines()[-1] == "", out.stderr[-2000:]
