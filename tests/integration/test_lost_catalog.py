"""A catalog that lost a table's entry never restarts the table or lets maintenance clean it.

The table's metadata and data stay at its warehouse location: runs refuse to create a new table
over them, ``status``/``verify``/``maintain`` report it, and ``register`` brings the table back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.io import load_file_io

from offload_pipeline.core.iceberg.location import metadata_files
from offload_pipeline.core.iceberg.state import creation_properties
from offload_pipeline.core.window import Watermark, iso
from offload_pipeline.errors import LostTableError, classify
from tests.conftest import Project, write_config
from tests.hot_tiers import DEMO_TABLES

pytestmark = pytest.mark.integration
TABLE = DEMO_TABLES[0]


@dataclass
class LostProject(Project):
    watermark_before: Watermark | None = None
    """the watermark before the catalog was deleted"""


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def lost(tmp_path: Path) -> LostProject:
    """A table offloaded twice, then its catalog database deleted (orphans removable at once)."""
    path = write_config(tmp_path, maintenance={"orphan_min_age_seconds": 0})
    project = LostProject(dir=tmp_path, config_path=path)
    project.seed(500)
    project.offload()
    project.seed(300)
    project.offload()
    project.watermark_before = project.state().watermark
    (tmp_path / "catalog.db").unlink()
    return project


def table_dir(project: Project) -> Path:
    return project.dir / "warehouse" / "cold" / TABLE


def test_a_run_refuses_to_recreate_the_table_and_names_the_way_back(lost):
    before = files_under(table_dir(lost))
    with pytest.raises(LostTableError) as caught:
        lost.offload()
    message = str(caught.value)
    assert f"table '{TABLE}'" in message and f"cold.{TABLE}" in message
    assert str(table_dir(lost)) in message
    assert f"offload-pipeline register --table {TABLE}" in message
    assert classify(caught.value) == "catalog_unavailable" and not caught.value.retryable
    assert not lost.catalog().client.table_exists(f"cold.{TABLE}")
    assert files_under(table_dir(lost)) == before


def test_status_verify_and_maintain_report_it_and_delete_nothing(lost):
    before = files_under(table_dir(lost))
    status = lost.cli("status", "--json", "--table", TABLE)
    (entry,) = json.loads(status.stdout)["tables"]
    assert entry["watermark"] is None
    (error,) = entry["errors"]
    assert error["error_type"] == "catalog_unavailable" and "register" in error["message"]
    verify = lost.cli("verify", "--table", TABLE)
    assert verify.returncode == 1 and "catalog lost the table" in verify.stderr
    with pytest.raises(LostTableError):
        lost.maintain()
    assert files_under(table_dir(lost)) == before


def test_register_brings_the_table_back_and_the_next_run_continues_exactly_once(lost):
    old_rows = 800
    registered = lost.cli("register", "--table", TABLE)
    assert registered.returncode == 0, registered.stderr
    assert "registered" in registered.stdout
    state = lost.state()
    assert state.watermark == lost.watermark_before and state.rows_total == old_rows
    assert f"watermark={iso(state.watermark.cursor.ts)}" in registered.stdout
    assert lost.iceberg_rows() == old_rows

    again = lost.cli("register", "--table", TABLE)
    assert again.returncode == 0 and "already in the catalog" in again.stdout

    lost.seed(200)
    assert lost.offload().rows == 200
    assert lost.iceberg_rows() == old_rows + 200
    verify = lost.cli("verify", "--table", TABLE)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_register_refuses_two_files_of_the_newest_version_unless_told_which(lost):
    files = metadata_files(load_file_io(), str(table_dir(lost)))
    assert files
    newest = Path(files[-1].removeprefix("file://"))
    twin = newest.with_name(newest.name.split("-", 1)[0] + "-lost-race.metadata.json")
    shutil.copy(newest, twin)
    refused = lost.cli("register", "--table", TABLE)
    assert refused.returncode == 1 and "share the newest version" in refused.stderr
    assert "config_invalid" in refused.stderr
    chosen = lost.cli("register", "--table", TABLE, "--metadata-file", f"file://{newest}")
    assert chosen.returncode == 0, chosen.stderr
    assert lost.state().rows_total == 800


def test_maintenance_never_cleans_a_new_table_created_over_a_lost_one(lost):
    """A table created at the reused location without the check (by an older release or by hand)
    does not reference the lost table's files: orphan removal must not take them for its own."""
    old_files = files_under(table_dir(lost))
    spec = lost.spec()
    catalog = lost.catalog().client
    catalog.create_namespace("cold")
    schema = pa.schema([pa.field("sequence_number", pa.int64(), nullable=False)])
    catalog.create_table(f"cold.{TABLE}", schema=schema, properties=creation_properties(spec))
    with pytest.raises(LostTableError, match="another table"):
        lost.maintain()
    assert old_files <= files_under(table_dir(lost))


def test_a_table_never_created_is_created_as_before(project):
    project.seed(50)
    assert project.offload().rows == 50
    assert project.maintain().exists
