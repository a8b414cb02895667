"""The sources package: one backend per kind, each driver loaded only when its kind is opened."""

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from offload_pipeline.config import SourceKind, SourceSpec
from offload_pipeline.core.sources import open_source


def test_importing_the_package_loads_no_server_driver_and_no_backend():
    code = (
        "import sys, offload_pipeline.core.sources; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('clickhouse_connect', 'adbc_driver_postgresql', 'adbc_driver_sqlite') "
        "or m.startswith('offload_pipeline.core.sources.') and not m.endswith('._common')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


LOCATIONS = {
    "sqlite": "sqlite:///hot.db",
    "postgres": "postgresql://offload@h:5432/market",
    "clickhouse": "clickhousedb://offload@h:8123/market",
}


@pytest.mark.parametrize("kind", get_args(SourceKind))
def test_every_configurable_kind_opens_its_backend_without_connecting(kind):
    source = SourceSpec(
        name="hot",
        kind=kind,
        path=Path("hot.db"),
        host="h",
        port=5432 if kind == "postgres" else 8123,
        database="market",
        user="offload",
        password="s3cret",
    )
    assert open_source(source).location() == LOCATIONS[kind]
