"""Static checks of deploy/kubernetes: no cluster runs here, so every file is held to the checker
that would reject it on one.

Core-kind manifests pass the Kubernetes OpenAPI schemas (kubernetes-validate), the generated
manifests equal what generate.py makes from the current rules file, dashboard and config, the
PrometheusRule's groups pass promtool, and the Helm values' instance settings and the executor
switch pass Dagster's own config schemas.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from offload_pipeline.config import load_config
from offload_pipeline.definitions import build_definitions
from offload_pipeline.defs.jobs import BRONZE_JOB, MAINTENANCE_JOB
from tests.scripts import load_script

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
MANIFESTS = K8S / "manifests"
GENERATOR = K8S / "generate.py"
CORE_API_VERSIONS = {"v1", "apps/v1", "batch/v1"}
# the newest Kubernetes release the installed kubernetes-validate ships schemas for
KUBERNETES_VERSION = kubernetes_validate.latest_version()
CREDENTIAL_VARS = (
    "HOT_PG_PASSWORD",
    "ICEBERG_CATALOG_USER",
    "ICEBERG_CATALOG_PASSWORD",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
)


def load_generator() -> ModuleType:
    return load_script(GENERATOR)


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((K8S / "helm" / "values.yaml").read_text())


def test_committed_manifests_are_the_generator_output():
    module = load_generator()
    for name in module.GENERATED:
        assert (MANIFESTS / name).read_text() == module.render(name), (
            f"stale {name}: run python deploy/kubernetes/generate.py"
        )
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_fails_on_a_stale_manifest(tmp_path):
    module = load_generator()
    module.MANIFESTS = tmp_path
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    stale = tmp_path / "prometheus-rule.yaml"
    stale.write_text(stale.read_text().replace(">= 3", ">= 4"))
    assert module.main(["--check"]) == 1


def test_every_core_manifest_passes_the_kubernetes_schema():
    checked = []
    for name, doc in documents():
        if doc["apiVersion"] not in CORE_API_VERSIONS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked.append((name, doc["kind"]))
    assert {kind for _, kind in checked} >= {"ConfigMap", "Deployment", "Service"}, checked


def test_the_schema_check_rejects_a_broken_manifest():
    deployment = by_kind("Deployment")[0]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_prometheus_rule_carries_exactly_the_rules_file(tmp_path):
    (rule,) = by_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules_file = ROOT / "docker" / "prometheus" / "rules" / "iceberg-offload-alerts.yml"
    assert rule["spec"] == yaml.safe_load(rules_file.read_text())
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH; install the Debian package prometheus")
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(extracted)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_config_map_carries_exactly_the_generated_json():
    (dashboard,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"].endswith("dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = ROOT / "docker" / "grafana" / "dashboards" / "iceberg-offload.json"
    assert dashboard["data"] == {"iceberg-offload.json": committed.read_text()}
    # a ConfigMap holds at most 1 MiB
    assert len(json.dumps(dashboard).encode()) < 1024 * 1024


def test_the_pushgateway_is_scraped_with_its_pushed_labels():
    (monitor,) = by_kind("ServiceMonitor")
    (service,) = [s for s in by_kind("Service") if s["metadata"]["name"] == "pushgateway"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["honorLabels"] is True
        assert endpoint["port"] in port_names
    config = yaml.safe_load((K8S / "offload.yaml").read_text())
    name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
    assert config["metrics"]["pushgateway_url"].startswith(f"http://{name}.")
    assert config["metrics"]["pushgateway_url"].endswith(f":{port}")


def test_the_helm_instance_settings_pass_dagsters_schema(values, tmp_path):
    instance = load_generator().instance_from_values(values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    # the whole instance check Dagster runs at start-up, cross-checks included
    config, _ = dagster_instance_config(str(tmp_path))
    launcher = validate_config(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    assert config["concurrency"]["pools"]["default_limit"] == 1
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["free_slots_after_run_end_seconds"] > 0
    # a crashed run is failed (and its slots freed), never resumed behind the commit check's back
    assert monitoring["max_resume_run_attempts"] == 0
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # every configurable class the instance names exists in the installed libraries
    for section in ("run_storage", "event_log_storage", "schedule_storage", "run_launcher"):
        named = instance[section]
        assert hasattr(importlib.import_module(named["module"]), named["class"]), section
    coordinator = instance["run_coordinator"]
    assert hasattr(importlib.import_module(coordinator["module"]), coordinator["class"])


def test_the_instance_check_rejects_conflicting_run_limits(values, tmp_path):
    values = json.loads(json.dumps(values))
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] = {
        "tagConcurrencyLimits": [{"key": "a", "limit": 1}]
    }
    instance = load_generator().instance_from_values(values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    with pytest.raises(Exception, match="incompatible"):
        dagster_instance_config(str(tmp_path))


def test_no_password_in_the_deployment_files(values):
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["enabled"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["global"]["postgresqlSecretName"]
    catalog = yaml.safe_load((K8S / "offload.yaml").read_text())["catalog"]["properties"]
    assert catalog["s3.secret-access-key"] == "${S3_SECRET_ACCESS_KEY}"
    assert "${ICEBERG_CATALOG_PASSWORD}" in catalog["uri"]


def test_the_user_code_deployment_loads_the_project(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "offload_pipeline.definitions", "-a", "defs"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    env = {e["name"]: e["value"] for e in deployment["env"]}
    (mount,) = deployment["volumeMounts"]
    assert env["OFFLOAD_CONFIG"] == f"{mount['mountPath']}/offload.yaml"
    (volume,) = deployment["volumes"]
    assert volume["configMap"]["name"] == "offload-config"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_cluster_config_runs_each_step_in_its_own_pod(monkeypatch):
    for var in CREDENTIAL_VARS:
        monkeypatch.setenv(var, "unused")
    config = load_config(K8S / "offload.yaml")
    assert config.executor.kind == "k8s_job"
    checked = validate_config(k8s_job_executor.config_schema.config_type, config.executor.config)
    assert checked.success, checked.errors
    defs = build_definitions(config)
    for job in (BRONZE_JOB, MAINTENANCE_JOB):
        assert defs.resolve_job_def(job).executor_def.name == "k8s"
