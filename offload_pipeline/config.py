"""The table config (``offload.yaml``) and environment, parsed into frozen specs.

Everything a run needs is decided here, once, with errors that name the table and the field.
Identifiers are validated so the SQL built from them later can quote them safely.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import unquote, urlsplit

import yaml

from offload_pipeline.errors import ConfigInvalidError

CONFIG_ENV = "OFFLOAD_CONFIG"
PUSHGATEWAY_ENV = "OFFLOAD_PUSHGATEWAY_URL"
DEFAULT_CONFIG = "offload.yaml"
DEFAULT_PIPELINE = "default"

# the one list of hot-tier kinds; `core.sources` opens one backend per kind
SourceKind = Literal["sqlite", "postgres", "clickhouse"]
CATALOG_TYPES = ("sql", "rest", "glue", "hive", "dynamodb", "in-memory", "bigquery")
PARTITION_TRANSFORMS = ("identity", "year", "month", "day", "hour")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# a Prometheus label value that is also a plain Pushgateway URL path segment
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PARTITION = re.compile(r"^\s*(\w+)\s*\(\s*(\w+)\s*\)\s*$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_SECRET_KEY = re.compile(r"password|secret|token|credential|private|key", re.IGNORECASE)
# a secret in a URL query string (`?password=...`), as some catalog and driver URIs take one
_SECRET_QUERY = re.compile(
    r"([?&][^=&]*(?:password|secret|token|key)[^=&]*=)([^&#\s]*)", re.IGNORECASE
)
# a URL's password: up to the last `@`, as a raw `@` may be part of it
_URL_PASSWORD = re.compile(r"(://[^/:@\s]+):(\S*)@")


# keys of a source besides `kind`, per kind, and the defaults of the optional ones
SOURCE_KEYS: dict[str, set[str]] = {
    "sqlite": {"path"},
    "postgres": {
        "host",
        "port",
        "database",
        "user",
        "password",
        "schema",
        "sslmode",
        "connect_timeout_seconds",
        "statement_timeout_seconds",
    },
    "clickhouse": {
        "host",
        "port",
        "database",
        "user",
        "password",
        "secure",
        "connect_timeout_seconds",
        "statement_timeout_seconds",
    },
}
DEFAULT_PORTS = {"postgres": 5432, "clickhouse": 8123}
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 600.0
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class SourceSpec:
    """Where a hot-tier table lives: a SQLite file, or a PostgreSQL or ClickHouse server."""

    name: str
    kind: SourceKind
    path: Path | None = None
    """SQLite database file (sqlite only)."""
    host: str = ""
    port: int = 0
    database: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    """read from the environment (`${VAR}` in the file); never printed"""
    schema: str = "public"
    """PostgreSQL schema of the source tables"""
    sslmode: str = ""
    """PostgreSQL `sslmode` (libpq default when empty)"""
    secure: bool = False
    """ClickHouse over HTTPS"""
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    statement_timeout_seconds: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS
    """longest a single query may run on the server before it fails with `error_type=timeout`"""


@dataclass(frozen=True)
class CatalogSpec:
    """A pyiceberg catalog: ``load_catalog(name, **properties)`` opens it."""

    name: str
    properties: Mapping[str, str]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret the properties hold, for scrubbing messages: the values of secret-named
        keys, URL passwords and secret query parameters, each also URL-decoded and cut at the
        characters a URL parser splits on (a raw ``@`` in a password makes a driver print its
        tail as the host name)."""
        found = [value for key, value in self.properties.items() if _SECRET_KEY.search(key)]
        for value in self.properties.values():
            found += [m.group(2) for m in _URL_PASSWORD.finditer(value)]
            found += [m.group(2) for m in _SECRET_QUERY.finditer(value)]
        secrets = set()
        for secret in (*found, *(unquote(s) for s in found)):
            secrets.add(secret)
            # pieces of fewer than 3 characters would blank out ordinary words
            secrets.update(p for p in re.split(r"[@:/?#]", secret) if len(p) >= 3)
        return tuple(sorted(s for s in secrets if s))


@dataclass(frozen=True)
class Cursor:
    """The columns that order rows for incremental reads."""

    event_time: str
    tie_breaker: str


@dataclass(frozen=True)
class TableSpec:
    """One bronze table: its hot-tier source, its Iceberg target and how to read it."""

    name: str
    source: SourceSpec
    source_table: str
    cursor: Cursor
    primary_key: tuple[str, ...]
    namespace: str
    iceberg_table: str
    partition_transform: str
    partition_column: str
    settle_delay_seconds: float = 60.0
    late_row_lookback_seconds: float = 3600.0

    @property
    def iceberg_identifier(self) -> str:
        return f"{self.namespace}.{self.iceberg_table}"


@dataclass(frozen=True)
class RunSpec:
    """How runs execute: batch size, writer lock, timeout and retries."""

    batch_rows: int = 250_000
    lock_dir: Path = Path(".offload/locks")
    lock_timeout_seconds: float = 300.0
    max_runtime_seconds: int = 1800
    max_retries: int = 3
    retry_delay_seconds: float = 10.0


ExecutorKind = Literal["multiprocess", "k8s_job"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = get_args(ExecutorKind)


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a Dagster run executes its steps (``dagster:`` in the config).

    ``multiprocess`` is Dagster's default (one process per step inside the run's process or pod);
    ``k8s_job`` runs each step, i.e. each table, in its own Kubernetes pod through dagster-k8s.
    """

    kind: ExecutorKind = "multiprocess"
    config: Mapping[str, Any] = field(default_factory=dict)
    """The executor's own config, checked by Dagster against the executor's schema."""


@dataclass(frozen=True)
class MaintenanceSpec:
    """Iceberg maintenance: when it runs and what it keeps (``maintenance:`` in the config)."""

    cron: str = "30 3 * * *"
    enabled: bool = True
    """Whether the maintenance schedule starts RUNNING (default: as ``schedule.enabled``)."""
    snapshot_retention_days: float = 7.0
    min_snapshots_to_keep: int = 10
    target_file_size_bytes: int = 128 * 1024 * 1024
    orphan_min_age_seconds: float = 3600.0


@dataclass(frozen=True)
class Config:
    """The whole parsed config."""

    path: Path
    catalog: CatalogSpec
    tables: tuple[TableSpec, ...]
    sources: Mapping[str, SourceSpec]
    run: RunSpec = field(default_factory=RunSpec)
    schedule_cron: str = "*/15 * * * *"
    schedule_enabled: bool = True
    """Whether the schedule starts RUNNING; a deployment can still toggle it in the UI."""
    pushgateway_url: str = ""
    pipeline: str = DEFAULT_PIPELINE
    """The ``pipeline`` label of every pushed group: tells deployments sharing a Pushgateway and a
    Prometheus apart."""
    partitions_start: str = "2026-01-01"
    """First day (UTC) of the daily partitions the Dagster UI offers for backfills."""
    reconcile_days: int = 7
    """Days before the watermark the reconciliation check compares by count."""
    maintenance: MaintenanceSpec = field(default_factory=MaintenanceSpec)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        known = ", ".join(t.name for t in self.tables)
        raise ConfigInvalidError(f"unknown table '{name}' (configured: {known})")


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: explicit argument, then ``OFFLOAD_CONFIG``, then ``offload.yaml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file.

    Raises:
        ConfigInvalidError: the file is missing or malformed; the message names the field.
    """
    file = config_path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError as e:
        raise ConfigInvalidError(f"config file not found: {file}") from e
    except yaml.YAMLError as e:
        raise ConfigInvalidError(f"{file}: not valid YAML: {e}") from e
    except ValueError as e:
        # YAML reads 2026-02-30 as a date and fails building it
        raise ConfigInvalidError(f"{file}: a value is not a real date or time: {e}") from e
    return parse_config(raw, file)


def parse_config(raw: Any, file: Path) -> Config:
    """Validate an already-parsed YAML document; relative paths resolve against ``file``."""
    base = file.parent
    top = _mapping(raw, "config")
    _no_unknown(
        top,
        {
            "sources",
            "catalog",
            "metrics",
            "schedule",
            "run",
            "defaults",
            "tables",
            "backfill",
            "reconciliation",
            "maintenance",
            "dagster",
        },
        "config",
    )

    sources = _parse_sources(top.get("sources"), base)
    catalog = _parse_catalog(top.get("catalog"), base)
    run = _parse_run(top.get("run", {}), base)
    metrics = _mapping(top.get("metrics", {}), "metrics")
    _no_unknown(metrics, {"pushgateway_url", "pipeline"}, "metrics")
    pipeline = _label_value(metrics.get("pipeline", DEFAULT_PIPELINE), "metrics: pipeline")
    schedule = _mapping(top.get("schedule", {}), "schedule")
    _no_unknown(schedule, {"cron", "enabled"}, "schedule")
    enabled = schedule.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigInvalidError(f"schedule: enabled: must be true or false, got {enabled!r}")
    defaults = _mapping(top.get("defaults", {}), "defaults")
    backfill = _mapping(top.get("backfill", {}), "backfill")
    _no_unknown(backfill, {"start_date"}, "backfill")
    partitions_start = _date(backfill.get("start_date", Config.partitions_start), "backfill")
    reconciliation = _mapping(top.get("reconciliation", {}), "reconciliation")
    _no_unknown(reconciliation, {"days"}, "reconciliation")
    reconcile_days = _whole(reconciliation, "days", "reconciliation", Config.reconcile_days, 1)
    maintenance = _parse_maintenance(top.get("maintenance", {}), enabled)
    executor = _parse_executor(top.get("dagster", {}))

    raw_tables = top.get("tables")
    if not isinstance(raw_tables, list) or not raw_tables:
        raise ConfigInvalidError("tables: must be a non-empty list of tables")
    tables: list[TableSpec] = []
    seen: set[str] = set()
    for i, raw_table in enumerate(raw_tables):
        spec = _parse_table(raw_table, i, defaults, sources)
        if spec.name in seen:
            raise ConfigInvalidError(f"table '{spec.name}': name: duplicate table name")
        seen.add(spec.name)
        tables.append(spec)
    identifiers = [t.iceberg_identifier for t in tables]
    for spec in tables:
        if identifiers.count(spec.iceberg_identifier) > 1:
            raise ConfigInvalidError(
                f"table '{spec.name}': iceberg: '{spec.iceberg_identifier}' is the target of "
                "more than one table"
            )

    url = _pushgateway_url(metrics)
    return Config(
        path=file,
        catalog=catalog,
        tables=tuple(tables),
        sources=sources,
        run=run,
        schedule_cron=str(schedule.get("cron", Config.schedule_cron)),
        schedule_enabled=enabled,
        partitions_start=partitions_start,
        reconcile_days=reconcile_days,
        pushgateway_url=url,
        pipeline=pipeline,
        maintenance=maintenance,
        executor=executor,
    )


def _pushgateway_url(metrics: Mapping[str, Any]) -> str:
    """The Pushgateway base URL (empty: metrics off), refused at load unless it is a plain
    ``http(s)://host[:port][/path]``: a malformed one would only show as failed pushes."""
    where = "metrics: pushgateway_url"
    raw = metrics.get("pushgateway_url", "")
    if PUSHGATEWAY_ENV in os.environ:
        where, raw = PUSHGATEWAY_ENV, os.environ[PUSHGATEWAY_ENV]
    if raw is None or raw == "":
        return ""
    url = str(raw).rstrip("/")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        not isinstance(raw, str)
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.query
        or parts.fragment
        or re.search(r"\s", url)
    ):
        raise ConfigInvalidError(
            f"{where}: {_strip_url_password(str(raw))!r} is not an http(s) URL "
            "(like http://pushgateway:9091)"
        )
    return url


def _label_value(value: Any, where: str) -> str:
    return _matching(
        value,
        _LABEL_VALUE,
        where,
        "a safe label value (letters, digits, '_', '.', '-'; starting with a letter or digit; "
        "at most 63 characters)",
    )


def check_identifier(value: Any, where: str) -> str:
    """Return ``value`` if it is a plain SQL identifier, else raise naming ``where``."""
    return _matching(
        value,
        _IDENTIFIER,
        where,
        "a safe identifier (letters, digits, underscore; not starting with a digit; "
        "at most 63 characters)",
    )


def _matching(value: Any, pattern: re.Pattern[str], where: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigInvalidError(f"{where}: {value!r} is not {what}")
    return value


def redact(properties: Mapping[str, str]) -> dict[str, str]:
    """Catalog properties without secrets: secret-looking keys dropped, URL passwords masked."""
    return {
        key: _strip_url_password(value)
        for key, value in properties.items()
        if not _SECRET_KEY.search(key)
    }


def _strip_url_password(value: str) -> str:
    """``value`` without the password of a URL (up to the last ``@``, so a raw ``@`` inside the
    password hides its tail too) and without secret query parameters."""
    value = _URL_PASSWORD.sub(r"\1@", value)
    return _SECRET_QUERY.sub(r"\1***", value)


def _parse_sources(raw: Any, base: Path) -> dict[str, SourceSpec]:
    sources = _mapping(raw, "sources")
    if not sources:
        raise ConfigInvalidError("sources: at least one hot-tier source is required")
    parsed = {}
    for name, body in sources.items():
        where = f"sources.{name}"
        check_identifier(name, where)
        body = _mapping(body, where)
        kind = body.get("kind")
        if kind not in get_args(SourceKind):
            raise ConfigInvalidError(
                f"{where}.kind: {kind!r} is not one of {', '.join(get_args(SourceKind))}"
            )
        kind = cast(SourceKind, kind)
        _no_unknown(body, {"kind"} | SOURCE_KEYS[kind], f"{where} (kind {kind})")
        if kind == "sqlite":
            path = body.get("path")
            if not isinstance(path, str) or not path:
                raise ConfigInvalidError(f"{where}.path: required for a sqlite source")
            parsed[name] = SourceSpec(
                name=name, kind=kind, path=(base / _expand(path, where)).resolve()
            )
        else:
            parsed[name] = _parse_server_source(name, kind, body, where)
    return parsed


def _parse_server_source(
    name: str, kind: SourceKind, body: dict[str, Any], where: str
) -> SourceSpec:
    """A PostgreSQL or ClickHouse source: connection settings, password only from the env."""

    def text(key: str, default: str | None = None) -> str:
        value = body.get(key, default)
        if value is None:
            raise ConfigInvalidError(f"{where}.{key}: required for a {kind} source")
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise ConfigInvalidError(f"{where}.{key}: must be a non-empty string, got {value!r}")
        return _expand(str(value), f"{where}.{key}")

    password_raw = body.get("password", "")
    if password_raw and not (isinstance(password_raw, str) and _ENV_ONLY.match(password_raw)):
        # the value is deliberately not echoed: it may be a real password
        raise ConfigInvalidError(
            f"{where}.password: must be a ${{VAR}} reference to an environment variable; "
            "passwords never live in the config file"
        )
    password = _expand(password_raw, f"{where}.password") if password_raw else ""

    port_text = text("port", str(DEFAULT_PORTS[kind] if kind != "clickhouse" else 0))
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigInvalidError(f"{where}.port: {port_text!r} is not a TCP port")
    secure = body.get("secure", False)
    if not isinstance(secure, bool):
        raise ConfigInvalidError(f"{where}.secure: must be true or false, got {secure!r}")
    port = int(port_text) or (8443 if secure else DEFAULT_PORTS[kind])

    sslmode = ""
    schema = "public"
    if kind == "postgres":
        schema = check_identifier(text("schema", "public"), f"{where}.schema")
        sslmode = text("sslmode", "prefer")
        if sslmode not in SSL_MODES:
            raise ConfigInvalidError(
                f"{where}.sslmode: {sslmode!r} is not one of {', '.join(SSL_MODES)}"
            )
    database = text("database", None if kind == "postgres" else "default")
    if kind == "clickhouse":
        # a ClickHouse database is spelled into the generated SQL, like table and column names
        check_identifier(database, f"{where}.database")
    return SourceSpec(
        name=name,
        kind=kind,
        host=text("host"),
        port=port,
        database=database,
        user=text("user", None if kind == "postgres" else "default"),
        password=password,
        schema=schema,
        sslmode=sslmode,
        secure=secure,
        connect_timeout_seconds=_number(
            body,
            "connect_timeout_seconds",
            where,
            DEFAULT_CONNECT_TIMEOUT_SECONDS,
            minimum=1,
        ),
        statement_timeout_seconds=_number(
            body,
            "statement_timeout_seconds",
            where,
            DEFAULT_STATEMENT_TIMEOUT_SECONDS,
            minimum=1,
        ),
    )


def _parse_catalog(raw: Any, base: Path) -> CatalogSpec:
    body = _mapping(raw, "catalog")
    _no_unknown(body, {"name", "properties"}, "catalog")
    name = check_identifier(body.get("name", "offload"), "catalog.name")
    props_raw = _mapping(body.get("properties"), "catalog.properties")
    props = {}
    for key, value in props_raw.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigInvalidError(f"catalog.properties.{key}: must be a scalar, got {value!r}")
        props[str(key)] = _expand(str(value), f"catalog.properties.{key}")
    ctype = props.get("type")
    if ctype is None:
        raise ConfigInvalidError(
            f"catalog.properties.type: required (one of {', '.join(CATALOG_TYPES)})"
        )
    if ctype not in CATALOG_TYPES:
        raise ConfigInvalidError(
            f"catalog.properties.type: {ctype!r} is not one of {', '.join(CATALOG_TYPES)}"
        )
    if ctype in ("sql", "rest") and not props.get("uri"):
        raise ConfigInvalidError(f"catalog.properties.uri: required for a {ctype} catalog")
    if ctype == "sql" and not props.get("warehouse"):
        raise ConfigInvalidError("catalog.properties.warehouse: required for a sql catalog")
    uri = props.get("uri", "")
    # a relative sqlite catalog path is relative to the config file, like every other path
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        props["uri"] = "sqlite:///" + str((base / uri[len("sqlite:///") :]).resolve())
    warehouse = props.get("warehouse")
    if warehouse and "://" not in warehouse:
        props["warehouse"] = (base / warehouse).resolve().as_uri()
    return CatalogSpec(name=name, properties=props)


def _date(value: Any, where: str) -> str:
    """A calendar date as ``YYYY-MM-DD`` text."""
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigInvalidError(
            f"{where}: start_date: {value!r} is not a date (YYYY-MM-DD)"
        ) from None


def _parse_run(raw: Any, base: Path) -> RunSpec:
    body = _mapping(raw, "run")
    allowed = {"batch_rows", "lock_dir", "lock_timeout_seconds", "max_runtime_seconds", "retry"}
    _no_unknown(body, allowed, "run")
    retry = _mapping(body.get("retry", {}), "run.retry")
    _no_unknown(retry, {"max_retries", "delay_seconds"}, "run.retry")
    defaults = RunSpec()
    return RunSpec(
        batch_rows=_whole(body, "batch_rows", "run", defaults.batch_rows, minimum=1),
        lock_dir=(base / str(body.get("lock_dir", defaults.lock_dir))).resolve(),
        lock_timeout_seconds=_number(
            body, "lock_timeout_seconds", "run", defaults.lock_timeout_seconds, minimum=0
        ),
        max_runtime_seconds=_whole(
            body, "max_runtime_seconds", "run", defaults.max_runtime_seconds, minimum=1
        ),
        max_retries=_whole(retry, "max_retries", "run.retry", defaults.max_retries, minimum=0),
        retry_delay_seconds=_number(
            retry, "delay_seconds", "run.retry", defaults.retry_delay_seconds, minimum=0
        ),
    )


def _parse_maintenance(raw: Any, schedule_enabled: bool) -> MaintenanceSpec:
    where = "maintenance"
    body = _mapping(raw, where)
    defaults = MaintenanceSpec()
    _no_unknown(body, {f.name for f in dataclass_fields(MaintenanceSpec)}, where)
    cron = body.get("cron", defaults.cron)
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ConfigInvalidError(f"{where}: cron: {cron!r} must be a 5-field cron expression")
    enabled = body.get("enabled", schedule_enabled)
    if not isinstance(enabled, bool):
        raise ConfigInvalidError(f"{where}: enabled: must be true or false, got {enabled!r}")
    min_keep = _whole(body, "min_snapshots_to_keep", where, defaults.min_snapshots_to_keep, 1)
    target = _whole(body, "target_file_size_bytes", where, defaults.target_file_size_bytes, 1)
    return MaintenanceSpec(
        cron=cron,
        enabled=enabled,
        snapshot_retention_days=_number(
            body, "snapshot_retention_days", where, defaults.snapshot_retention_days, minimum=0
        ),
        min_snapshots_to_keep=min_keep,
        target_file_size_bytes=target,
        orphan_min_age_seconds=_number(
            body, "orphan_min_age_seconds", where, defaults.orphan_min_age_seconds, minimum=0
        ),
    )


def _parse_executor(raw: Any) -> ExecutorSpec:
    where = "dagster"
    body = _mapping(raw, where)
    _no_unknown(body, {"executor", "executor_config"}, where)
    kind = body.get("executor", ExecutorSpec.kind)
    if kind not in EXECUTOR_KINDS:
        raise ConfigInvalidError(
            f"{where}: executor: {kind!r} must be one of {', '.join(EXECUTOR_KINDS)}"
        )
    config = _mapping(body.get("executor_config", {}), f"{where}.executor_config")
    return ExecutorSpec(kind=cast(ExecutorKind, kind), config=config)


_TABLE_KEYS = {
    "name",
    "source",
    "source_table",
    "cursor",
    "primary_key",
    "iceberg",
    "namespace",
    "partition",
    "settle_delay_seconds",
    "late_row_lookback_seconds",
}


def _parse_table(
    raw: Any, index: int, defaults: Mapping[str, Any], sources: Mapping[str, SourceSpec]
) -> TableSpec:
    body = _mapping(raw, f"tables[{index}]")
    raw_name = body.get("name")
    where = f"table '{raw_name}'" if isinstance(raw_name, str) else f"tables[{index}]"
    name = check_identifier(raw_name, f"{where}: name")
    _no_unknown(defaults, _TABLE_KEYS - {"name", "source_table", "iceberg"}, "defaults")
    _no_unknown(body, _TABLE_KEYS, where)
    merged = {**defaults, **body}

    source_name: str | None = merged.get("source")
    if source_name is None and len(sources) == 1:
        source_name = next(iter(sources))
    if source_name is None or source_name not in sources:
        raise ConfigInvalidError(
            f"{where}: source: {source_name!r} is not a configured source "
            f"(configured: {', '.join(sources)})"
        )
    source_table = check_identifier(merged.get("source_table", name), f"{where}: source_table")

    cursor_raw = merged.get("cursor")
    if cursor_raw is None:
        raise ConfigInvalidError(f"{where}: cursor: required (event_time and tie_breaker columns)")
    cursor_body = _mapping(cursor_raw, f"{where}: cursor")
    _no_unknown(cursor_body, {"event_time", "tie_breaker"}, f"{where}: cursor")
    for key in ("event_time", "tie_breaker"):
        if key not in cursor_body:
            raise ConfigInvalidError(f"{where}: cursor.{key}: required")
    cursor = Cursor(
        event_time=check_identifier(cursor_body["event_time"], f"{where}: cursor.event_time"),
        tie_breaker=check_identifier(cursor_body["tie_breaker"], f"{where}: cursor.tie_breaker"),
    )
    if cursor.event_time == cursor.tie_breaker:
        raise ConfigInvalidError(f"{where}: cursor: event_time and tie_breaker must differ")

    pk_raw = merged.get("primary_key")
    if not isinstance(pk_raw, list) or not pk_raw:
        raise ConfigInvalidError(f"{where}: primary_key: required, a non-empty list of columns")
    primary_key = tuple(check_identifier(c, f"{where}: primary_key") for c in pk_raw)
    if len(set(primary_key)) != len(primary_key):
        raise ConfigInvalidError(f"{where}: primary_key: repeats a column")

    iceberg = merged.get("iceberg")
    if iceberg is None:
        namespace = merged.get("namespace", "cold")
        iceberg = f"{namespace}.{name}"
    if not isinstance(iceberg, str) or iceberg.count(".") != 1:
        raise ConfigInvalidError(f"{where}: iceberg: {iceberg!r} must be 'namespace.table'")
    namespace, iceberg_table = iceberg.split(".")
    check_identifier(namespace, f"{where}: iceberg (namespace)")
    check_identifier(iceberg_table, f"{where}: iceberg (table)")

    partition = merged.get("partition", f"day({cursor.event_time})")
    match = _PARTITION.match(partition) if isinstance(partition, str) else None
    if not match or match.group(1) not in PARTITION_TRANSFORMS:
        raise ConfigInvalidError(
            f"{where}: partition: {partition!r} must be TRANSFORM(column) with TRANSFORM one of "
            f"{', '.join(PARTITION_TRANSFORMS)}"
        )
    transform, partition_column = match.group(1), match.group(2)
    check_identifier(partition_column, f"{where}: partition")

    return TableSpec(
        name=name,
        source=sources[source_name],
        source_table=source_table,
        cursor=cursor,
        primary_key=primary_key,
        namespace=namespace,
        iceberg_table=iceberg_table,
        partition_transform=transform,
        partition_column=partition_column,
        settle_delay_seconds=_number(
            merged, "settle_delay_seconds", where, TableSpec.settle_delay_seconds, minimum=0
        ),
        late_row_lookback_seconds=_number(
            merged, "late_row_lookback_seconds", where, TableSpec.late_row_lookback_seconds, 0
        ),
    )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise ConfigInvalidError(f"{where}: required")
    if not isinstance(value, dict):
        raise ConfigInvalidError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _no_unknown(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ConfigInvalidError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _number(body: Mapping[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    value = body.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)  # YAML's .nan and .inf
        or value < minimum
    ):
        raise ConfigInvalidError(f"{where}: {key}: {value!r} must be a number >= {minimum:g}")
    return float(value)


def _whole(body: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    """An integer setting: ``1.5`` is refused naming the field, never truncated to 1."""
    value = _number(body, key, where, default, minimum)
    if not value.is_integer():
        raise ConfigInvalidError(f"{where}: {key}: {body.get(key)!r} must be a whole number")
    return int(value)


def _expand(value: str, where: str) -> str:
    """Replace ``${VAR}`` with the environment value so secrets never sit in the file."""

    def sub(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in os.environ:
            raise ConfigInvalidError(f"{where}: environment variable {var} is not set")
        return os.environ[var]

    return _ENV_REF.sub(sub, value)
