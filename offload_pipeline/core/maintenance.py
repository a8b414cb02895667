"""Iceberg maintenance of one table: compact small files, expire old snapshots, remove orphans.

Every offload commit adds a snapshot and at least one data file per partition it touches, so
without maintenance metadata and small files pile up. ``maintain`` runs under the table's writer
lock (``core/lock.py``), the same one every offload takes, so on one host it never overlaps an
offload of the table; its commit is built on the table version it loaded and tables refuse
pyiceberg's silent commit retry, so a writer on another host makes it fail with
``CommitConflictError`` instead of being rebuilt on top of that writer.

Steps, in order:

1. **Compact.** A data file is *small* when it is below ``SMALL_FILE_FRACTION`` of
   ``target_file_size_bytes`` (Iceberg's own ``min-file-size-bytes`` default). In each partition,
   small files are packed into groups of at most ``target_file_size_bytes``; each group of two or
   more files is read, sorted by the cursor and written back as new files. All groups go into one
   overwrite snapshot, which deletes exactly the files it read: rows are unchanged, and the table
   properties (watermark, cumulative counters) are not touched.
2. **Expire** snapshots older than ``snapshot_retention_days``, always keeping the newest
   ``min_snapshots_to_keep`` and the current one. Compaction and expiry are one commit.
3. **Remove orphans**: files under the table's ``data/`` (and manifest files under ``metadata/``)
   that no remaining snapshot references, older than ``orphan_min_age_seconds`` so that files a
   writer on another host is about to commit are left alone. Attempts killed before their commit
   leave such files, and so do expired snapshots (pyiceberg's expiry deletes no files).
   ``*.metadata.json`` files are never removed. A location that also holds another table's
   metadata (a table the catalog lost, with a new one created over it) is never cleaned: its
   data files are unreferenced by this table, yet not orphans (``core/iceberg/location.py``).
4. **Record** the end time as the table property ``offload.maintenance.last-timestamp`` (a
   property-only commit, ``core/iceberg/state.py``), which the metrics sensor reads back after any
   restart.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, PyArrowFileIO
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import FileScanTask, Table, Transaction

from offload_pipeline.config import MaintenanceSpec, RunSpec, TableSpec
from offload_pipeline.core import cancel
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.handle import TableHandle
from offload_pipeline.core.iceberg.location import foreign_metadata, list_files
from offload_pipeline.core.iceberg.pyiceberg_internals import expire_snapshots, write_data_files
from offload_pipeline.core.iceberg.state import (
    MAINTENANCE_COMMIT,
    SUMMARY_MAINTENANCE,
    SUMMARY_RUN_ID,
    decode_state,
    encode_state,
)
from offload_pipeline.core.lock import table_lock
from offload_pipeline.errors import CommitConflictError, LostTableError, WriteFailedError

log = logging.getLogger(__name__)

# a data file below this share of the target size is small (Iceberg's min-file-size-bytes default)
SMALL_FILE_FRACTION = 0.75
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class MaintenanceResult:
    """What one maintenance of one table did."""

    table: str
    exists: bool
    """False when the Iceberg table was never created: nothing was done or recorded"""
    snapshots_before: int = 0
    snapshots_after: int = 0
    data_files_before: int = 0
    data_files_after: int = 0
    small_file_ratio_before: float = 0.0
    small_file_ratio_after: float = 0.0
    partitions_compacted: int = 0
    files_compacted: int = 0
    """small files rewritten (and removed from the current snapshot)"""
    files_written: int = 0
    snapshots_expired: int = 0
    orphans_removed: int = 0
    orphan_bytes_removed: int = 0
    finished_at: float = 0.0
    """wall-clock end, recorded in the table (seconds since the epoch)"""
    duration_seconds: float = 0.0


def small_file_threshold(settings: MaintenanceSpec) -> int:
    """Data files smaller than this many bytes are compaction candidates."""
    return int(settings.target_file_size_bytes * SMALL_FILE_FRACTION)


def small_file_ratio(files: Iterable[DataFile], threshold: int) -> float:
    """Share of ``files`` that compaction would rewrite: below ``threshold`` bytes, in a partition
    holding another such file (0 when there are no files). A partition whose data all fits in one
    small file is as compact as it gets and does not count."""
    files = list(files)
    small: dict[tuple[int, str], int] = {}
    for f in files:
        if f.file_size_in_bytes < threshold:
            small[_partition(f)] = small.get(_partition(f), 0) + 1
    compactable = sum(n for n in small.values() if n >= 2)
    return compactable / len(files) if files else 0.0


def _partition(data_file: DataFile) -> tuple[int, str]:
    return data_file.spec_id, repr(data_file.partition)


def live_data_files(table: Table) -> list[DataFile]:
    """The data files of the table's current snapshot."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [
        entry.data_file
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        if entry.data_file.content == DataFileContent.DATA
    ]


def maintain(
    table: TableHandle,
    run: RunSpec,
    settings: MaintenanceSpec,
    *,
    run_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> MaintenanceResult:
    """Compact, expire and clean ``table``'s Iceberg table under its writer lock.

    Args:
        table: the table and its catalog (the hot tier is not read).
        run: the writer lock.
        settings: target file size, snapshot retention, orphan age.
        run_id: recorded in the compaction snapshot's summary (the Dagster run id), if given.
        clock: wall clock in seconds, for expiry, orphan age and the recorded end time.

    Raises:
        OffloadCancelledError: the process was asked to stop; the steps finished before are kept.
        OffloadError: a subclass naming the contract error type (``commit_conflict`` when the
            lock is held past ``run.lock_timeout_seconds`` or another writer committed first).
    """
    started = time.monotonic()
    spec = table.spec
    cancel.check(spec.name)
    with table_lock(run.lock_dir, spec.name, run.lock_timeout_seconds):
        failpoint("maintain.locked")
        cancel.check(spec.name)
        iceberg = table.catalog.load(spec)
        if iceberg is None:
            log.info("table %s: no Iceberg table yet, nothing to maintain", spec.name)
            return MaintenanceResult(spec.name, exists=False)
        # before compacting: a location this table cannot account for is left untouched
        refuse_foreign_metadata(spec, iceberg)
        threshold = small_file_threshold(settings)
        files_before = live_data_files(iceberg)
        snapshots_before = len(iceberg.snapshots())

        iceberg, compaction, expired = compact_and_expire(
            spec, iceberg, settings, now=clock(), run_id=run_id
        )
        cancel.check(spec.name)
        orphans, orphan_bytes = remove_orphans(
            spec, iceberg, settings.orphan_min_age_seconds, now=clock()
        )
        finished = clock()
        maintained = replace(decode_state(iceberg.properties), maintained_at=finished)
        iceberg = _commit(
            spec,
            iceberg.transaction().set_properties(encode_state(maintained, MAINTENANCE_COMMIT)),
        )
        files_after = live_data_files(iceberg)
        result = MaintenanceResult(
            table=spec.name,
            exists=True,
            snapshots_before=snapshots_before,
            snapshots_after=len(iceberg.snapshots()),
            data_files_before=len(files_before),
            data_files_after=len(files_after),
            small_file_ratio_before=small_file_ratio(files_before, threshold),
            small_file_ratio_after=small_file_ratio(files_after, threshold),
            partitions_compacted=compaction.partitions,
            files_compacted=compaction.files_read,
            files_written=compaction.files_written,
            snapshots_expired=expired,
            orphans_removed=orphans,
            orphan_bytes_removed=orphan_bytes,
            finished_at=finished,
            duration_seconds=time.monotonic() - started,
        )
    log.info(
        "table %s: maintenance: %d -> %d data files, %d -> %d snapshots, %d orphan file(s) removed",
        spec.name,
        result.data_files_before,
        result.data_files_after,
        result.snapshots_before,
        result.snapshots_after,
        result.orphans_removed,
    )
    return result


@dataclass(frozen=True)
class Compaction:
    partitions: int = 0
    files_read: int = 0
    files_written: int = 0


def compact_and_expire(
    spec: TableSpec,
    table: Table,
    settings: MaintenanceSpec,
    now: float,
    run_id: str | None = None,
) -> tuple[Table, Compaction, int]:
    """Compact small files and expire old snapshots of ``table`` in one commit built on it.

    Returns the committed table version (``table`` itself when there was nothing to do), what
    compaction did and how many snapshots were expired.

    Raises:
        CommitConflictError: anything was committed to the table after ``table`` was loaded.
    """
    tx = table.transaction()
    compaction = _compact(spec, table, tx, settings, run_id)
    expired = _expire(tx, settings, now)
    if compaction.files_read == 0 and not expired:
        return table, compaction, 0
    failpoint("maintain.commit.before")
    return _commit(spec, tx), compaction, expired


def _compact(
    spec: TableSpec, table: Table, tx: Transaction, settings: MaintenanceSpec, run_id: str | None
) -> Compaction:
    threshold = small_file_threshold(settings)
    by_partition: dict[tuple[int, str], list[FileScanTask]] = {}
    for task in table.scan().plan_files():
        # files with delete files are left alone: their row count is not the file's
        if task.file.file_size_in_bytes < threshold and not task.delete_files:
            by_partition.setdefault(_partition(task.file), []).append(task)
    groups = [
        group
        for _, tasks in sorted(by_partition.items())
        for group in _pack(tasks, settings.target_file_size_bytes, _event_time_id(table, spec))
        if len(group) >= 2
    ]
    if not groups:
        return Compaction()
    summary = {SUMMARY_MAINTENANCE: "compaction"}
    if run_id:
        summary[SUMMARY_RUN_ID] = run_id
    read = written = 0
    counter = itertools.count(0)  # file names of one commit are numbered across its groups
    try:
        with tx.update_snapshot(snapshot_properties=summary).overwrite() as rewrite:
            for group in groups:
                cancel.check(spec.name)  # files written so far are orphans for the next run
                rows = _read(table, group)
                expected = sum(t.file.record_count for t in group)
                if rows.num_rows != expected:
                    raise WriteFailedError(
                        f"table '{spec.name}': compaction read {rows.num_rows} rows from files "
                        f"holding {expected}; nothing was committed"
                    )
                rows = rows.sort_by(
                    [(spec.cursor.event_time, "ascending"), (spec.cursor.tie_breaker, "ascending")]
                )
                for task in group:
                    rewrite.delete_data_file(task.file)
                uuid = rewrite.commit_uuid
                for data_file in write_data_files(tx, rows, table.io, uuid, counter):
                    rewrite.append_data_file(data_file)
                    written += 1
                read += len(group)
                failpoint("maintain.compact")
    except OSError as e:
        raise WriteFailedError(f"table '{spec.name}': writing compacted files: {e}") from e
    partitions = len({_partition(t.file) for g in groups for t in g})
    return Compaction(partitions, read, written)


def _pack(tasks: list[FileScanTask], target: int, field_id: int) -> Iterator[list[FileScanTask]]:
    """Consecutive groups of ``tasks`` of at most ``target`` bytes each, in event-time order (so
    the files written have disjoint time ranges)."""

    def first_event(task: FileScanTask) -> tuple[int, str]:
        bound = (task.file.lower_bounds or {}).get(field_id)
        return int.from_bytes(bound, "little", signed=True) if bound else 0, task.file.file_path

    group: list[FileScanTask] = []
    size = 0
    for task in sorted(tasks, key=first_event):
        if group and size + task.file.file_size_in_bytes > target:
            yield group
            group, size = [], 0
        group.append(task)
        size += task.file.file_size_in_bytes
    if group:
        yield group


def _event_time_id(table: Table, spec: TableSpec) -> int:
    return table.schema().find_field(spec.cursor.event_time).field_id


def _read(table: Table, tasks: list[FileScanTask]) -> pa.Table:
    return ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)


def _expire(tx: Transaction, settings: MaintenanceSpec, now: float) -> int:
    """Stage the expiry of old snapshots; keeps the newest ``min_snapshots_to_keep`` and every
    branch or tag head (the current snapshot included)."""
    metadata = tx.table_metadata
    newest_first = sorted(metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
    kept = {s.snapshot_id for s in newest_first[: settings.min_snapshots_to_keep]}
    kept |= {ref.snapshot_id for ref in metadata.refs.values()}
    cutoff_ms = (now - settings.snapshot_retention_days * DAY_SECONDS) * 1000
    expire = [
        s.snapshot_id
        for s in newest_first
        if s.snapshot_id not in kept and s.timestamp_ms < cutoff_ms
    ]
    if expire:
        expire_snapshots(tx, expire)
    return len(expire)


def referenced_files(table: Table) -> set[str]:
    """Paths (as the file system lists them) of every file a snapshot of ``table`` needs:
    manifest lists, manifests, data and delete files."""
    io = table.io
    paths: set[str] = set()
    manifests: set[str] = set()
    for snapshot in table.metadata.snapshots:
        paths.add(_path(snapshot.manifest_list))
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in manifests:
                continue
            manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                paths.add(_path(entry.data_file.file_path))
    return paths | {_path(m) for m in manifests}


def remove_orphans(
    spec: TableSpec, table: Table, min_age_seconds: float, now: float
) -> tuple[int, int]:
    """Delete unreferenced files of ``table`` older than ``min_age_seconds``; (count, bytes).

    Raises:
        LostTableError: the location also holds another table's metadata, whose files this
            table cannot account for; nothing is deleted.
    """
    # list first, then read the references from the newest table version: a file another host
    # commits in between is then referenced, and one written after the listing is not listed
    listing = list_files(table.io, table.location())
    if listing is None:
        log.warning(
            "table %s: orphan files not removed: listing needs pyiceberg's PyArrowFileIO, the "
            "table uses %s",
            spec.name,
            type(table.io).__name__,
        )
        return 0, 0
    refuse_foreign_metadata(spec, table)
    referenced = referenced_files(table.refresh())
    root = listing.root
    removed = removed_bytes = 0
    for info in listing.files:
        if info.path in referenced:
            continue
        in_data = info.path.startswith(f"{root}/data/")
        manifest = info.path.startswith(f"{root}/metadata/") and info.path.endswith(".avro")
        if not (in_data or manifest):
            continue
        if info.mtime is None or now - info.mtime.timestamp() < min_age_seconds:
            continue
        location = listing.location(info)
        try:
            table.io.delete(location)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise WriteFailedError(
                f"table '{spec.name}': removing orphan file {location}: {e}"
            ) from e
        removed += 1
        removed_bytes += info.size or 0
        log.info("table %s: removed orphan file %s", spec.name, location)
    return removed, removed_bytes


def refuse_foreign_metadata(spec: TableSpec, table: Table) -> None:
    """Refuse to clean a location that also holds another table's history.

    When a catalog loses a table and a new one is created at the same location, the old table's
    data files are unreferenced by the new one: orphan removal would delete them.

    Raises:
        LostTableError: naming the other table's first metadata file(s).
    """
    foreign = foreign_metadata(table)
    if foreign:
        raise LostTableError(
            f"table '{spec.name}': its location {table.location()} also holds the metadata of "
            f"another table ({', '.join(foreign)}): a table the catalog lost, whose files this "
            "one cannot account for. Nothing was deleted; keep that table's files (move them "
            "away, or register that table under another name) before maintaining this one"
        )


def _path(location: str) -> str:
    return PyArrowFileIO.parse_location(location)[2]


def _commit(spec: TableSpec, tx: Transaction) -> Table:
    try:
        return tx.commit_transaction()
    except CommitFailedException as e:
        raise CommitConflictError(
            f"table '{spec.name}': another writer committed to {spec.iceberg_identifier} during "
            f"maintenance; nothing of this maintenance commit was applied ({e})"
        ) from e
    except OSError as e:
        raise WriteFailedError(f"table '{spec.name}': writing table metadata: {e}") from e
