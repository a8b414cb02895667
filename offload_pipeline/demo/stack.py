"""Local Pushgateway, Prometheus and Alertmanager processes for the demo and the tests.

They run the Debian binaries with the project's configs from the ``docker/`` directory the caller
names; only hosts, ports, paths and (for tests) intervals are rewritten, so what runs locally is
what production loads.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BINARIES = {
    "pushgateway": "prometheus-pushgateway",
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
}


class MissingBinaryError(RuntimeError):
    """Raised when a monitoring binary is not installed (``scripts/install-system-deps.sh``)."""


@dataclass
class Service:
    """A started server: its process and base URL."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    def ui_url(self) -> str:
        """The page a person should open: Debian's Prometheus ships only the classic UI, so its
        root redirects to a page that answers 404; ``/classic/graph`` is then the one that works."""
        if self.name != "prometheus":
            return self.url
        try:
            with urllib.request.urlopen(f"{self.url}/graph", timeout=2):
                return f"{self.url}/graph"
        except OSError:
            return f"{self.url}/classic/graph"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    path = shutil.which(BINARIES[name])
    if path is None:
        raise MissingBinaryError(
            f"{BINARIES[name]} is not installed: run scripts/install-system-deps.sh "
            "(Debian packages prometheus, prometheus-pushgateway, prometheus-alertmanager)"
        )
    return path


def start_pushgateway(data_dir: Path, port: int | None = None) -> Service:
    """A Pushgateway persisting its metrics to ``data_dir`` (so a restart keeps them)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        binary("pushgateway"),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={data_dir / 'pushgateway.metrics'}",
        "--persistence.interval=5s",
    ]
    return _start("pushgateway", args, f"http://127.0.0.1:{port}", data_dir)


def prometheus_config(
    docker_dir: Path,
    pushgateway: str,
    prometheus_port: int,
    alertmanager: str | None = None,
    interval: str | None = None,
) -> dict[str, Any]:
    """``<docker_dir>/prometheus/prometheus.yml`` with local targets and the rules beside it
    (and optionally faster intervals)."""
    prometheus_dir = docker_dir / "prometheus"
    config = yaml.safe_load((prometheus_dir / "prometheus.yml").read_text())
    targets = {
        "pushgateway": _hostport(pushgateway),
        "prometheus": f"127.0.0.1:{prometheus_port}",
        "alertmanager": _hostport(alertmanager) if alertmanager else None,
    }
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]}
        for job in config["scrape_configs"]
        if targets.get(job["job_name"])
    ]
    if alertmanager:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [targets["alertmanager"]]}]}]
        }
    else:
        config.pop("alerting", None)
    config["rule_files"] = [str(prometheus_dir / "rules" / "*.yml")]
    if interval:
        config["global"]["scrape_interval"] = interval
        config["global"]["evaluation_interval"] = interval
    return config


def start_prometheus(
    data_dir: Path, config: dict[str, Any], port: int, flags: Sequence[str] = ()
) -> Service:
    """Prometheus with ``config`` (from ``prometheus_config``) and its own TSDB in ``data_dir``;
    ``flags`` are extra command-line flags (tests shorten ``--rules.alert.resend-delay``)."""
    config_file = _write_config(data_dir, "prometheus.yml", config)
    args = [
        binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *flags,
    ]
    return _start("prometheus", args, f"http://127.0.0.1:{port}", data_dir)


def alertmanager_config(
    docker_dir: Path, webhook_url: str | None, intervals: dict[str, str] | None = None
) -> dict[str, Any]:
    """``<docker_dir>/alertmanager/alertmanager.yml`` delivering every webhook to ``webhook_url``.

    None keeps the file's URLs; ``intervals`` (tests) shortens group_wait/interval, repeat_interval.
    """
    config = yaml.safe_load((docker_dir / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config.get("receivers", []) if webhook_url else []:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        for key, value in (intervals or {}).items():
            if key in route or route is config["route"]:
                route[key] = value
    return config


def start_alertmanager(data_dir: Path, config: dict[str, Any], port: int | None = None) -> Service:
    """Alertmanager with ``config`` (from ``alertmanager_config``), clustering off."""
    port = port or free_port()
    config_file = _write_config(data_dir, "alertmanager.yml", config)
    args = [
        binary("alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={data_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _start("alertmanager", args, f"http://127.0.0.1:{port}", data_dir)


def start_monitoring(
    docker_dir: Path,
    state_dir: Path,
    *,
    pushgateway_port: int,
    prometheus_port: int,
    alertmanager_port: int,
    webhook_url: str | None,
) -> list[Service]:
    """Pushgateway, Alertmanager and Prometheus wired together with the configs under
    ``docker_dir`` (the Pushgateway first); if one cannot start, the others are stopped again."""
    services: list[Service] = []
    try:
        pushgateway = start_pushgateway(state_dir / "pushgateway", port=pushgateway_port)
        services.append(pushgateway)
        alertmanager = start_alertmanager(
            state_dir / "alertmanager",
            alertmanager_config(docker_dir, webhook_url),
            port=alertmanager_port,
        )
        services.append(alertmanager)
        prometheus = prometheus_config(
            docker_dir, pushgateway.url, prometheus_port, alertmanager.url
        )
        services.append(start_prometheus(state_dir / "prometheus", prometheus, prometheus_port))
    except BaseException:
        for service in services:
            service.stop()
        raise
    return services


def _write_config(data_dir: Path, name: str, config: dict[str, Any]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _start(name: str, args: list[str], url: str, data_dir: Path, timeout: float = 30) -> Service:
    log = (data_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    service = Service(name, url, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return service
        except OSError:
            time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"{name} did not become ready at {url} within {timeout:g} s; see {log.name}")


def _hostport(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")
