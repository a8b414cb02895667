"""Static checks of the compose stack in docker/ (no Docker engine needed).

docker-compose.yml, .env.example, dagster.yaml, workspace.yaml and offload.yaml must agree with
each other and with the Prometheus, Alertmanager and Grafana configuration they mount.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from offload_pipeline.config import load_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
DAGSTER_YAML = DOCKER / "dagster.yaml"
WORKSPACE = DOCKER / "workspace.yaml"
OFFLOAD_YAML = DOCKER / "offload.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
PROMETHEUS_CONFIG = DOCKER / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# `${VAR}` / `${VAR:-default}` interpolated by compose; `$${VAR}` is left to the container shell
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
ONLY_VAR = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon", "user-code")
EXPECTED_SERVICES = {
    *DAGSTER_SERVICES,
    "postgres",
    "minio",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line}"
            values[key.strip()] = value.strip()
    return values


def without_comments(text: str) -> str:
    """YAML text without comment lines and trailing `` # comments``."""
    lines = (line.split(" # ", 1)[0] for line in text.splitlines())
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that stay up (one-shot init jobs have `restart: "no"`)."""
    return {name: s for name, s in services.items() if s.get("restart") != "no"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports | {int(p) for p in service.get("expose", [])}


def test_the_stack_has_every_service(services):
    assert EXPECTED_SERVICES <= services.keys()
    one_shot = set(services) - set(long_running(services))
    assert one_shot, "the bucket and catalog creation are one-shot services"
    assert any("minio/mc" in services[s]["image"] for s in one_shot)


def test_bind_mounted_paths_exist(services):
    mounts = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (DOCKER / source).resolve().exists(), f"{name}: {source} does not exist"
                mounts += 1
    assert mounts >= 8


def test_images_are_pinned(services):
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
    built = [s for s in services.values() if "build" in s]
    assert built and all(s["build"]["dockerfile"] == "docker/Dockerfile" for s in built)
    assert (DOCKER / built[0]["build"]["context"] / built[0]["build"]["dockerfile"]).exists()
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert base and base.group(1).startswith("python:3.11") and "latest" not in base.group(1)


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in long_running(services).items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_dagster_services(services):
    code = services["user-code"]
    command = " ".join(code["command"])
    assert "code-server start -h 0.0.0.0 -p 4000" in command
    assert "-m offload_pipeline.definitions -a defs" in command
    workspace = yaml.safe_load(WORKSPACE.read_text())
    (location,) = workspace["load_from"]
    assert location["grpc_server"]["host"] == "user-code"
    assert location["grpc_server"]["port"] in container_ports(code)
    for name in DAGSTER_SERVICES:
        service = services[name]
        assert environment(service)["DAGSTER_HOME"] == "/opt/dagster/dagster_home", name
        assert any(
            str(v).startswith("./dagster.yaml:/opt/dagster/dagster_home/dagster.yaml")
            for v in service["volumes"]
        ), name
    dockerfile = DOCKERFILE.read_text()
    assert "WORKDIR /opt/dagster/app" in dockerfile
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in dockerfile


def test_no_literal_secrets(services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key) or key.endswith(("_USER", "ROOT_USER")):
                assert ONLY_VAR.match(value), f"{name}: {key} must be a ${{VAR}}, not {value!r}"
    literal = re.compile(r"(?i)\w*(password|secret)\w*\s*[:=]\s*(?!\$\$?\{)['\"]?\w")
    for line in without_comments(COMPOSE.read_text()).splitlines():
        assert not literal.search(line), f"literal secret in docker-compose.yml: {line.strip()}"
    # offload.yaml keeps its credentials in the environment too
    catalog = yaml.safe_load(OFFLOAD_YAML.read_text())["catalog"]["properties"]
    for key in ("s3.access-key-id", "s3.secret-access-key"):
        assert ONLY_VAR.match(catalog[key]), key
    assert "${ICEBERG_CATALOG_PASSWORD}" in catalog["uri"]


def test_every_variable_is_defined_in_env_example():
    defined = env_example()
    for file in (COMPOSE, OFFLOAD_YAML):
        used = set(COMPOSE_VAR.findall(without_comments(file.read_text())))
        assert used, file.name
        missing = used - defined.keys()
        assert not missing, f"{file.name} uses {sorted(missing)}, not in .env.example"
    # placeholders only: nothing in the example looks like a real credential
    for key, value in defined.items():
        if re.search("PASSWORD|SECRET", key):
            assert "change-me" in value, f".env.example: {key} must be a placeholder"


def test_prometheus_targets_are_compose_services(services):
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    targets += [
        target
        for am in config["alerting"]["alertmanagers"]
        for static in am["static_configs"]
        for target in static["targets"]
    ]
    checked = 0
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            assert int(port) in container_ports(services["prometheus"]), target
            continue
        assert host in services, f"prometheus.yml targets {host}, not a compose service"
        assert int(port) in container_ports(services[host]), f"{target}: port not in compose"
        checked += 1
    assert checked >= 3  # pushgateway, alertmanager (scrape), alertmanager (alerting)
    volumes = services["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in volumes


def test_grafana_datasource_points_at_the_prometheus_service(services):
    (datasource,) = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"]
    match = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"])
    assert match, datasource["url"]
    host, port = match.group(1), int(match.group(2))
    assert host in services and port in container_ports(services[host])
    volumes = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes


def test_alertmanager_service_mounts_the_config(services):
    service = services["alertmanager"]
    config = "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
    assert config in service["volumes"]
    assert 9093 in container_ports(service)
    assert "--persistence.file" in " ".join(services["pushgateway"]["command"])


def test_named_volumes_are_declared(compose, services):
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"


def test_dagster_yaml_uses_postgres_storage_from_the_environment(services):
    instance = yaml.safe_load(DAGSTER_YAML.read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    env_vars = set()
    for key in ("hostname", "db_name", "username", "password"):
        assert set(db[key]) == {"env"}, f"storage.postgres.postgres_db.{key} must use env:"
        env_vars.add(db[key]["env"])
    # every variable it reads is set for the Dagster services
    for name in DAGSTER_SERVICES:
        assert env_vars <= environment(services[name]).keys(), name
    assert "run_coordinator" not in instance  # not allowed together with `concurrency: runs`
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    assert instance["concurrency"]["runs"]["max_concurrent_runs"] == 4
    assert instance["run_monitoring"]["enabled"] is True
    assert instance["run_launcher"]["class"] == "DefaultRunLauncher"


def test_dagster_yaml_is_a_valid_instance_config(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    for key, value in {
        "DAGSTER_POSTGRES_HOST": "postgres",
        "DAGSTER_POSTGRES_DB": "dagster",
        "DAGSTER_POSTGRES_USER": "dagster",
        "DAGSTER_POSTGRES_PASSWORD": "placeholder",
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["hostname"] == {
        "env": "DAGSTER_POSTGRES_HOST"
    }


def test_offload_yaml_loads_with_the_example_environment(monkeypatch, services):
    for key, value in env_example().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OFFLOAD_PUSHGATEWAY_URL", raising=False)
    config = load_config(OFFLOAD_YAML)
    props = config.catalog.properties
    assert props["type"] == "sql"
    assert props["uri"].startswith("postgresql+psycopg2://")
    assert props["uri"].endswith("@postgres:5432/iceberg_catalog")
    assert props["warehouse"] == "s3://warehouse/"
    assert props["s3.endpoint"] == "http://minio:9000"
    assert config.pushgateway_url == "http://pushgateway:9091"
    assert [t.name for t in config.tables] == [
        "bronze_trades_binance",
        "bronze_trades_kraken",
        "bronze_trades_coinbase",
    ]
    # the hot tier and the locks live on named volumes of the user-code service
    code_volumes = {v.split(":")[1] for v in services["user-code"]["volumes"]}
    assert config.sources["hot"].path.parent.as_posix() in code_volumes
    assert config.run.lock_dir.as_posix() in code_volumes
    # every variable offload.yaml reads is passed to the container that loads it
    used = set(COMPOSE_VAR.findall(without_comments(OFFLOAD_YAML.read_text())))
    assert used <= environment(services["user-code"]).keys()


def test_minio_settings_use_the_object_storage_properties_the_tests_prove(services):
    """docker/offload.yaml reaches MinIO with exactly the ``s3.*`` catalog properties that
    tests/integration/test_object_storage.py runs against a real S3 server, each secret a ${VAR}
    the minio-init job also gives MinIO; its warehouse bucket is the one minio-init creates."""
    from tests.object_store import CATALOG_PROPERTIES

    catalog = yaml.safe_load(OFFLOAD_YAML.read_text())["catalog"]["properties"]
    s3_keys = {key for key in catalog if key.startswith("s3.")}
    assert s3_keys == CATALOG_PROPERTIES.keys()
    endpoint = catalog["s3.endpoint"]
    host, port = endpoint.removeprefix("http://").split(":")
    assert host == "minio" and int(port) in container_ports(services["minio"])
    init = services["minio-init"]
    script = "\n".join(init["command"])
    assert f"mc alias set local {endpoint} " in script
    bucket = catalog["warehouse"].removeprefix("s3://").split("/")[0]
    assert f"mc mb --ignore-existing local/{bucket}\n" in script
    # the pipeline's S3 user is the one minio-init creates, from the same variables
    for key in ("s3.access-key-id", "s3.secret-access-key"):
        var = ONLY_VAR.match(catalog[key]).group(0)[2:-1]
        assert environment(init)[var] == f"${{{var}}}"
        assert f'"$${{{var}}}"' in script
