"""The pyiceberg internals maintenance needs, in one place, checked against one pinned release.

pyiceberg 0.12 has no public compaction, no orphan-file listing, no way to expire snapshots
inside a caller's transaction and no way to ask where a new table would go, so maintenance and
table creation use four non-public pieces. They can change in any
release: ``tests/unit/test_pyiceberg_internals.py`` fails when the installed pyiceberg is not
``CHECKED_AGAINST`` or a signature moved, and says what to re-check before bumping the pin.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable

import pyarrow as pa
from pyarrow import fs as pafs
from pyiceberg.catalog import WAREHOUSE_LOCATION, Catalog, MetastoreCatalog
from pyiceberg.exceptions import NoSuchNamespaceError
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import PyArrowFileIO, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import Transaction
from pyiceberg.table.update.snapshot import ExpireSnapshots

CHECKED_AGAINST = "0.12.0"
"""the pyiceberg release (pinned in pyproject.toml) these calls were verified against"""


def write_data_files(
    tx: Transaction,
    rows: pa.Table,
    io: FileIO,
    write_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> Iterable[DataFile]:
    """Write ``rows`` as data files of the transaction's table, without committing them.

    The public ``append``/``overwrite`` commit what they write; compaction must delete and add
    files in one snapshot, so it writes the files itself (names numbered by ``counter``).
    """
    return _dataframe_to_data_files(
        tx.table_metadata, rows, io, write_uuid=write_uuid, counter=counter
    )


def expire_snapshots(tx: Transaction, snapshot_ids: list[int]) -> None:
    """Stage the expiry of ``snapshot_ids`` in ``tx`` (the public API opens its own transaction,
    which would commit compaction and expiry separately)."""
    ExpireSnapshots(tx).by_ids(snapshot_ids).commit()


def filesystem(io: PyArrowFileIO, scheme: str, netloc: str | None) -> pafs.FileSystem:
    """The PyArrow file system behind ``io`` for a location, to list a table's files (FileIO
    itself can only open and delete single paths)."""
    return io.fs_by_scheme(scheme, netloc)


def default_table_location(catalog: Catalog, namespace: str, name: str) -> str | None:
    """Where ``catalog`` puts a new table ``namespace.name`` created without a location; None when
    it does not decide that itself (a REST catalog's server does).

    A metastore catalog (SQL, Glue, Hive, …) takes the namespace's ``location`` property, else
    ``<warehouse>/<namespace>/<name>``; a lost catalog has lost the namespace too, so then only
    the warehouse rule is left.
    """
    if not isinstance(catalog, MetastoreCatalog):
        return None
    try:
        return catalog._resolve_table_location(None, namespace, name)
    except NoSuchNamespaceError:
        warehouse = catalog.properties.get(WAREHOUSE_LOCATION)
        return f"{warehouse.rstrip('/')}/{namespace}/{name}" if warehouse else None
    except ValueError:  # no warehouse configured: the catalog cannot create tables without one
        return None
