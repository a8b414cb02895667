"""The pyiceberg internals maintenance needs, in one place, checked against one pinned release.

pyiceberg 0.12 has no public compaction, no orphan-file listing and no way to expire snapshots
inside a caller's transaction, so maintenance uses three non-public pieces. They can change in any
release: ``tests/unit/test_pyiceberg_internals.py`` fails when the installed pyiceberg is not
``CHECKED_AGAINST`` or a signature moved, and says what to re-check before bumping the pin.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable

import pyarrow as pa
from pyarrow import fs as pafs
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
