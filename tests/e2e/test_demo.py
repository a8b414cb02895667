"""`offload-pipeline demo` starts everything a newcomer needs, and Ctrl-C stops all of it."""

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from offload_pipeline.demo.stack import free_port
from tests.conftest import DOCKER, ROOT

pytestmark = pytest.mark.e2e


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_demo_starts_feed_monitoring_and_dagster_then_stops_cleanly(project, tmp_path):
    # a project root like the repository's: the demo finds these beside the config file
    (tmp_path / "workspace.yaml").write_text((ROOT / "workspace.yaml").read_text())
    for configs in ("prometheus", "alertmanager"):
        shutil.copytree(DOCKER / configs, tmp_path / "docker" / configs)
    ui, pg, prom, am = free_port(), free_port(), free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "offload_pipeline.cli",
            "--config",
            str(project.config_path),
            "demo",
            "--port",
            str(ui),
            "--pushgateway-port",
            str(pg),
            "--prometheus-port",
            str(prom),
            "--alertmanager-port",
            str(am),
            "--seed-rows",
            "500",
            "--rate",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        urls = [
            f"http://127.0.0.1:{ui}/server_info",
            f"http://127.0.0.1:{pg}/-/ready",
            f"http://127.0.0.1:{prom}/-/ready",
            f"http://127.0.0.1:{am}/-/ready",
        ]
        while not all(_ready(u) for u in urls):
            assert demo.poll() is None, demo.stdout.read()
            assert time.monotonic() < deadline, "demo services did not come up"
            time.sleep(1)
        first = project.hot_count()
        time.sleep(2)
        assert project.hot_count() > first  # the feed writes
        # every URL the demo prints opens (Debian's Prometheus has only the classic UI)
        printed = re.findall(r"^[A-Za-z ]+:\s+(http://\S+)", "".join(lines), re.MULTILINE)
        assert len(printed) == 4, lines
        for url in printed:
            assert _ready(url), url
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    assert demo.returncode == 0, out[-3000:]
    for service_port in (pg, prom, am):
        assert f"http://127.0.0.1:{service_port}" in out
    assert not any(_ready(u) for u in urls)
    # nothing the demo started outlives it (Dagster's webserver, daemon and code servers included)
    assert _processes_with_env(f"OFFLOAD_PUSHGATEWAY_URL=http://127.0.0.1:{pg}") == []


def _processes_with_env(entry: str) -> list[str]:
    """Command lines of the live processes whose environment holds ``entry``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if entry.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError):  # not a process, or gone, or not ours
            continue
    return found
