"""Config validation: every malformed config fails at load with one line naming table and field."""

from pathlib import Path

import pytest
import yaml

from offload_pipeline.config import load_config, redact
from offload_pipeline.errors import ConfigInvalidError
from tests.conftest import write_config


def _with(tmp_path: Path, mutate) -> Path:
    path = write_config(tmp_path)
    doc = yaml.safe_load(path.read_text())
    mutate(doc)
    path.write_text(yaml.safe_dump(doc))
    return path


def _table(doc, i=0):
    return doc["tables"][i]


BAD = {
    "unknown table key": (
        lambda d: _table(d).update(cursr={}),
        "table 'bronze_trades_binance': unknown key 'cursr'",
    ),
    "unknown top-level key": (lambda d: d.update(tabels=[]), "config: unknown key 'tabels'"),
    "duplicate table": (
        lambda d: d["tables"].append({"name": "bronze_trades_binance"}),
        "table 'bronze_trades_binance': name: duplicate table name",
    ),
    "unsafe table name": (
        lambda d: _table(d).update(name='x"; DROP TABLE t; --'),
        "is not a safe identifier",
    ),
    "unsafe cursor column": (
        lambda d: _table(d).update(cursor={"event_time": "ts desc", "tie_breaker": "seq"}),
        "table 'bronze_trades_binance': cursor.event_time: 'ts desc' is not a safe identifier",
    ),
    "missing tie breaker": (
        lambda d: _table(d).update(cursor={"event_time": "exchange_timestamp"}),
        "table 'bronze_trades_binance': cursor.tie_breaker: required",
    ),
    "empty primary key": (
        lambda d: _table(d).update(primary_key=[]),
        "table 'bronze_trades_binance': primary_key: required",
    ),
    "bad partition": (
        lambda d: _table(d).update(partition="week(exchange_timestamp)"),
        "table 'bronze_trades_binance': partition: 'week(exchange_timestamp)'",
    ),
    "bad iceberg identifier": (
        lambda d: _table(d).update(iceberg="a.b.c"),
        "table 'bronze_trades_binance': iceberg: 'a.b.c' must be 'namespace.table'",
    ),
    "unknown source": (
        lambda d: _table(d).update(source="warm"),
        "table 'bronze_trades_binance': source: 'warm' is not a configured source",
    ),
    "bad catalog type": (
        lambda d: d["catalog"]["properties"].update(type="oracle"),
        "catalog.properties.type: 'oracle' is not one of",
    ),
    "sql catalog without uri": (
        lambda d: d["catalog"]["properties"].pop("uri"),
        "catalog.properties.uri: required for a sql catalog",
    ),
    "unknown source kind": (
        lambda d: d["sources"]["hot"].update(kind="mysql"),
        "sources.hot.kind: 'mysql' is not one of",
    ),
    "negative settle delay": (
        lambda d: _table(d).update(settle_delay_seconds=-5),
        "table 'bronze_trades_binance': settle_delay_seconds: -5 must be a number >= 0",
    ),
    "two tables one target": (
        lambda d: _table(d, 1).update(iceberg="cold.bronze_trades_binance"),
        "iceberg: 'cold.bronze_trades_binance' is the target of more than one table",
    ),
    "missing env secret": (
        lambda d: d["catalog"]["properties"].update(password="${OFFLOAD_TEST_UNSET_SECRET}"),
        "catalog.properties.password: environment variable OFFLOAD_TEST_UNSET_SECRET is not set",
    ),
    "no tables": (lambda d: d.update(tables=[]), "tables: must be a non-empty list"),
    "backfill start not a date": (
        lambda d: d.update(backfill={"start_date": "last year"}),
        "backfill: start_date: 'last year' is not a date (YYYY-MM-DD)",
    ),
    "reconciliation days below one": (
        lambda d: d.update(reconciliation={"days": 0}),
        "reconciliation: days: 0 must be a number >= 1",
    ),
    "postgres without database": (
        lambda d: d["sources"].update(hot={"kind": "postgres", "host": "db", "user": "u"}),
        "sources.hot.database: required for a postgres source",
    ),
    "sqlite key on a postgres source": (
        lambda d: d["sources"].update(
            hot={"kind": "postgres", "host": "db", "user": "u", "database": "d", "path": "x"}
        ),
        "sources.hot (kind postgres): unknown key 'path'",
    ),
    "postgres bad port": (
        lambda d: d["sources"].update(
            hot={"kind": "postgres", "host": "db", "user": "u", "database": "d", "port": "80a"}
        ),
        "sources.hot.port: '80a' is not a TCP port",
    ),
    "postgres bad sslmode": (
        lambda d: d["sources"].update(
            hot={"kind": "postgres", "host": "h", "user": "u", "database": "d", "sslmode": "on"}
        ),
        "sources.hot.sslmode: 'on' is not one of disable",
    ),
    "clickhouse without host": (
        lambda d: d["sources"].update(hot={"kind": "clickhouse"}),
        "sources.hot.host: required for a clickhouse source",
    ),
    "clickhouse database spelled into SQL": (
        lambda d: d["sources"].update(
            hot={"kind": "clickhouse", "host": "ch", "database": "x' OR '1'='1"}
        ),
        "sources.hot.database",
    ),
    "clickhouse zero statement timeout": (
        lambda d: d["sources"].update(
            hot={"kind": "clickhouse", "host": "ch", "statement_timeout_seconds": 0}
        ),
        "sources.hot: statement_timeout_seconds: 0 must be a number >= 1",
    ),
    "literal source password": (
        lambda d: d["sources"].update(
            hot={"kind": "clickhouse", "host": "ch", "password": "hunter2"}
        ),
        "sources.hot.password: must be a ${VAR} reference",
    ),
    "schedule enabled not a bool": (
        lambda d: d.update(schedule={"enabled": "no"}),
        "schedule: enabled: must be true or false, got 'no'",
    ),
    "unknown maintenance key": (
        lambda d: d.update(maintenance={"retention_days": 3}),
        "maintenance: unknown key 'retention_days'",
    ),
    "maintenance not a mapping": (
        lambda d: d.update(maintenance="daily"),
        "maintenance: must be a mapping, got str",
    ),
    "negative snapshot retention": (
        lambda d: d.update(maintenance={"snapshot_retention_days": -1}),
        "maintenance: snapshot_retention_days: -1 must be a number >= 0",
    ),
    "no snapshot kept": (
        lambda d: d.update(maintenance={"min_snapshots_to_keep": 0}),
        "maintenance: min_snapshots_to_keep: 0 must be a number >= 1",
    ),
    "fractional snapshots kept": (
        lambda d: d.update(maintenance={"min_snapshots_to_keep": 2.5}),
        "maintenance: min_snapshots_to_keep: 2.5 must be a whole number",
    ),
    "target file size not a number": (
        lambda d: d.update(maintenance={"target_file_size_bytes": "128MB"}),
        "maintenance: target_file_size_bytes: '128MB' must be a number >= 1",
    ),
    "negative orphan age": (
        lambda d: d.update(maintenance={"orphan_min_age_seconds": -60}),
        "maintenance: orphan_min_age_seconds: -60 must be a number >= 0",
    ),
    "maintenance cron malformed": (
        lambda d: d.update(maintenance={"cron": "daily"}),
        "maintenance: cron: 'daily' must be a 5-field cron expression",
    ),
    "maintenance enabled not a bool": (
        lambda d: d.update(maintenance={"enabled": "yes"}),
        "maintenance: enabled: must be true or false, got 'yes'",
    ),
    # it becomes a label value and a Pushgateway URL path segment
    "pipeline with a slash": (
        lambda d: d.update(metrics={"pipeline": "eu/prod"}),
        "metrics: pipeline: 'eu/prod' is not a safe label value",
    ),
    "pipeline empty": (
        lambda d: d.update(metrics={"pipeline": ""}),
        "metrics: pipeline: '' is not a safe label value",
    ),
    "pipeline not a string": (
        lambda d: d.update(metrics={"pipeline": 7}),
        "metrics: pipeline: 7 is not a safe label value",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_config_gives_one_clear_line(tmp_path, case):
    mutate, expected = BAD[case]
    with pytest.raises(ConfigInvalidError) as err:
        load_config(_with(tmp_path, mutate))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_not_yaml(tmp_path):
    path = tmp_path / "offload.yaml"
    path.write_text("tables: [unclosed")
    with pytest.raises(ConfigInvalidError, match="not valid YAML"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigInvalidError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_and_relative_paths_resolve(tmp_path):
    config = load_config(write_config(tmp_path))
    spec = config.table("bronze_trades_kraken")
    assert spec.iceberg_identifier == "cold.bronze_trades_kraken"
    assert (spec.partition_transform, spec.partition_column) == ("day", "exchange_timestamp")
    assert spec.source.path == tmp_path / "hot.db"
    assert config.catalog.properties["uri"] == f"sqlite:///{tmp_path}/catalog.db"
    assert config.catalog.properties["warehouse"] == (tmp_path / "warehouse").as_uri()


def test_secrets_come_from_the_environment_and_are_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("CATALOG_PW", "s3cr3t")

    def mutate(d):
        d["catalog"]["properties"]["uri"] = "postgresql+psycopg2://offload:${CATALOG_PW}@db/ice"
        d["catalog"]["properties"]["s3.secret-access-key"] = "${CATALOG_PW}"

    config = load_config(_with(tmp_path, mutate))
    assert config.catalog.properties["s3.secret-access-key"] == "s3cr3t"
    shown = redact(config.catalog.properties)
    assert "s3cr3t" not in str(shown)
    assert shown["uri"] == "postgresql+psycopg2://offload@db/ice"


def test_redaction_drops_key_properties_and_every_url_password():
    shown = redact(
        {
            "type": "sql",
            "adls.account-key": "k3y",
            "adls.sas-token.acct": "t0k",
            "s3.access-key-id": "id",
            "uri": "postgresql://u:p@ss/w@rd@db:5432/ice",
            "jdbc": "postgresql://db/ice?user=u&password=s3cr3t&sslmode=require",
            "warehouse": "s3://bucket/wh",
        }
    )
    assert shown == {
        "type": "sql",
        "uri": "postgresql://u@db:5432/ice",
        "jdbc": "postgresql://db/ice?user=u&password=***&sslmode=require",
        "warehouse": "s3://bucket/wh",
    }


def test_pushgateway_env_overrides_config(tmp_path, monkeypatch):
    path = _with(tmp_path, lambda d: d.update(metrics={"pushgateway_url": "http://a:9091/"}))
    assert load_config(path).pushgateway_url == ""  # the isolation fixture sets it empty
    monkeypatch.delenv("OFFLOAD_PUSHGATEWAY_URL")
    assert load_config(path).pushgateway_url == "http://a:9091"


def test_pipeline_defaults_to_default_and_is_read_from_metrics(tmp_path):
    assert load_config(write_config(tmp_path)).pipeline == "default"
    path = _with(tmp_path, lambda d: d.update(metrics={"pipeline": "eu-prod.2"}))
    assert load_config(path).pipeline == "eu-prod.2"


def test_maintenance_defaults_and_overrides(tmp_path):
    defaults = load_config(write_config(tmp_path)).maintenance
    assert (defaults.cron, defaults.enabled) == ("30 3 * * *", True)
    assert (defaults.snapshot_retention_days, defaults.min_snapshots_to_keep) == (7.0, 10)
    assert defaults.target_file_size_bytes == 128 * 1024 * 1024
    assert defaults.orphan_min_age_seconds == 3600.0
    # a deployment that starts its offload schedule stopped starts maintenance stopped too
    stopped = load_config(write_config(tmp_path, schedule={"enabled": False})).maintenance
    assert stopped.enabled is False
    custom = load_config(
        write_config(
            tmp_path,
            schedule={"enabled": False},
            maintenance={"cron": "0 4 * * *", "enabled": True, "min_snapshots_to_keep": 3},
        )
    ).maintenance
    assert (custom.cron, custom.enabled, custom.min_snapshots_to_keep) == ("0 4 * * *", True, 3)


def test_server_sources_expand_the_environment_and_keep_the_password_out_of_repr(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("HOT_HOST", "pg.internal")
    monkeypatch.setenv("HOT_PASSWORD", "p@ss:/word")

    def mutate(d):
        d["sources"]["hot"] = {
            "kind": "postgres",
            "host": "${HOT_HOST}",
            "database": "market",
            "user": "offload",
            "password": "${HOT_PASSWORD}",
        }

    source = load_config(_with(tmp_path, mutate)).sources["hot"]
    assert (source.host, source.port, source.schema) == ("pg.internal", 5432, "public")
    assert source.password == "p@ss:/word"
    assert source.statement_timeout_seconds == 600 and source.connect_timeout_seconds == 10
    assert "p@ss" not in repr(source)
    from offload_pipeline.core.sources import open_source

    assert open_source(source).location() == "postgresql://offload@pg.internal:5432/market"
