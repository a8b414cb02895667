"""Non-public third-party APIs the project relies on, checked against the pinned releases.

When a pin in pyproject.toml moves, these fail first and name what to re-check: each private
call lives in one module (``core/iceberg/pyiceberg_internals.py``) that states the release it was
verified on.
"""

import inspect
import itertools
from importlib.metadata import version

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import PyArrowFileIO

from offload_pipeline.core.iceberg import pyiceberg_internals as internals


def test_pyiceberg_is_the_release_the_internals_were_checked_against():
    assert version("pyiceberg") == internals.CHECKED_AGAINST, (
        "pyiceberg moved: re-check every call in "
        "offload_pipeline/core/iceberg/pyiceberg_internals.py (and the maintenance tests), "
        "then update CHECKED_AGAINST"
    )


def test_the_private_pyiceberg_calls_still_have_the_shapes_used():
    from pyiceberg.io.pyarrow import _dataframe_to_data_files
    from pyiceberg.table.update.snapshot import ExpireSnapshots

    params = inspect.signature(_dataframe_to_data_files).parameters
    assert list(params)[:3] == ["table_metadata", "df", "io"]
    assert {"write_uuid", "counter"} <= set(params)
    assert list(inspect.signature(ExpireSnapshots.__init__).parameters) == ["self", "transaction"]
    assert callable(PyArrowFileIO().fs_by_scheme)


@pytest.fixture
def table(tmp_path):
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("n")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    created = catalog.create_table("n.t", schema=schema)
    for start in (0, 10):
        created.append(pa.table({"id": pa.array(range(start, start + 10), pa.int64())}, schema))
    return catalog.load_table("n.t")


def test_written_files_and_staged_expiry_land_in_one_commit(table):
    first, second = table.snapshots()
    rows = pa.table({"id": pa.array(range(100, 105), pa.int64())})
    with table.transaction() as tx:
        with tx.update_snapshot().fast_append() as append:
            files = internals.write_data_files(
                tx, rows, table.io, append.commit_uuid, itertools.count(0)
            )
            for data_file in files:
                append.append_data_file(data_file)
        internals.expire_snapshots(tx, [first.snapshot_id])
    table = table.refresh()
    assert [s.snapshot_id for s in table.snapshots()][0] == second.snapshot_id
    assert len(table.snapshots()) == 2
    assert table.scan().to_arrow().num_rows == 25


def test_the_filesystem_lists_the_table_location(table):
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location())
    fs = internals.filesystem(table.io, scheme, netloc)
    listing = fs.get_file_info(pa.fs.FileSelector(root, recursive=True))
    assert sum(i.path.endswith(".parquet") for i in listing) == 2


def test_a_new_tables_default_location_follows_the_catalogs_rule(tmp_path):
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/warehouse/"
    )
    # no namespace (a lost catalog): the warehouse rule
    expected = f"file://{tmp_path}/warehouse/n/t"
    assert internals.default_table_location(catalog, "n", "t") == expected
    catalog.create_namespace("n", {"location": f"file://{tmp_path}/elsewhere"})
    assert internals.default_table_location(catalog, "n", "t") == f"file://{tmp_path}/elsewhere/t"
    created = catalog.create_table("n.t", schema=pa.schema([pa.field("id", pa.int64())]))
    assert created.location() == f"file://{tmp_path}/elsewhere/t"
