"""The production profile on a real PostgreSQL server: Dagster storage from docker/dagster.yaml,
the Iceberg SQL catalog in PostgreSQL, and a PostgreSQL hot tier; `offload-pipeline run`
materializes every asset."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT, Project, write_config
from tests.hot_tiers import PostgresHot

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
TABLES = ("bronze_trades_binance", "bronze_trades_kraken", "bronze_trades_coinbase")


@pytest.fixture
def databases(pg_hot: PostgresHot):
    server = pg_hot.server
    created = [server.create_database(), server.create_database()]
    yield created
    for name in created:
        server.drop_database(name)


def test_run_on_postgres_storage_and_catalog_materializes_every_table(
    pg_hot, databases, tmp_path, monkeypatch
):
    storage_db, catalog_db = databases
    server = pg_hot.server
    home = tmp_path / "prod_home"
    home.mkdir()
    shutil.copy(ROOT / "docker" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in {
        "HOST": server.host,
        "PORT": str(server.port),
        "DB": storage_db,
        "USER": "postgres",
        "PASSWORD": "unused-on-trust",
    }.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{key}", value)
    monkeypatch.setenv("ICEBERG_CATALOG_USER", "postgres")
    for table in TABLES:
        pg_hot.seed(table, 1_500, span_seconds=600)
    catalog_uri = (
        f"postgresql+psycopg2://${{ICEBERG_CATALOG_USER}}@{server.host}:{server.port}/{catalog_db}"
    )
    path = write_config(
        tmp_path,
        sources={"hot": pg_hot.source()},
        catalog={
            "name": "offload",
            "properties": {"type": "sql", "uri": catalog_uri, "warehouse": "warehouse"},
        },
    )
    project = Project(tmp_path, path, pg_hot)

    run = project.cli("run", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    import dagster as dg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        (record,) = instance.get_runs()
        assert record.status == dg.DagsterRunStatus.SUCCESS
        for table in TABLES:
            event = instance.get_latest_materialization_event(dg.AssetKey(table))
            assert event is not None and event.run_id == record.run_id, table
            rows = event.asset_materialization.metadata["rows"].value
            assert rows == 1_500, table
    # the catalog lives in PostgreSQL: its tables, in the catalog database
    listed = pg_hot.server.connect(catalog_db).cursor()
    listed.execute("SELECT table_name FROM iceberg_tables ORDER BY table_name")
    assert [r[0] for r in listed.fetchall()] == sorted(TABLES)
    listed.connection.close()
    for table in TABLES:
        check = project.reconcile(table)
        assert check.ok and check.iceberg_rows == 1_500
