"""Hot-tier sources: read a window of rows as Arrow record batches, in cursor order.

A source hands out *snapshots*: one consistent read in which the bound (max event time), the
late-row counts and the rows themselves are all taken, so a row visible at the bound can never be
skipped. Each backend (``sqlite``, ``postgres``, ``clickhouse``) is imported only when a source of
its kind is opened, so its driver is loaded only where it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import pyarrow as pa

from offload_pipeline.config import SourceKind, SourceSpec, TableSpec
from offload_pipeline.core.sources._common import TIMESTAMP, quote
from offload_pipeline.core.window import CursorValue, Window
from offload_pipeline.errors import NullCursorError

__all__ = [
    "TIMESTAMP",
    "HotTier",
    "SourceSnapshot",
    "null_cursor_error",
    "open_source",
    "quote",
]


class SourceSnapshot(Protocol):
    """One consistent read of one hot-tier table."""

    def schema(self) -> pa.Schema:
        """Arrow schema of the table (the types rows are delivered in)."""

    def max_event_time(self) -> int | None:
        """Largest event time (µs) in the table, None when empty."""

    def count_between(self, lo_ts: int, hi: CursorValue) -> int:
        """Rows with event time >= ``lo_ts`` and cursor <= ``hi``."""

    def count_by_day(self, lo_ts: int, hi: CursorValue) -> dict[int, int]:
        """``count_between`` per UTC day in one query: {first µs of the day: rows}, days without
        rows left out (a ``GROUP BY`` day where the backend groups cheaply)."""

    def read(self, window: Window, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Rows of ``window`` in cursor order, in batches of about ``batch_rows``."""

    def keys(self, columns: tuple[str, ...], upto: CursorValue) -> pa.Table:
        """``columns`` of every row with cursor <= ``upto`` (for reconciliation)."""

    def null_cursor_rows(self) -> dict[str, int]:
        """Rows whose cursor column is NULL, per cursor column that has any (no window holds
        them, so every other read misses them)."""


class HotTier(Protocol):
    """A hot-tier database holding bronze tables."""

    def location(self) -> str:
        """SQLAlchemy-style URL of the database, without password."""

    def snapshot(self, spec: TableSpec) -> AbstractContextManager[SourceSnapshot]:
        """Open one consistent read of ``spec``'s source table."""

    def connected(self) -> AbstractContextManager[None]:
        """Within it, snapshots may share one connection (where a new one is costly); each is
        still its own consistent read. Not for use from several threads."""


def _sqlite(source: SourceSpec) -> HotTier:
    from offload_pipeline.core.sources.sqlite import SqliteHotTier

    return SqliteHotTier(source)


def _postgres(source: SourceSpec) -> HotTier:
    from offload_pipeline.core.sources.postgres import PostgresHotTier

    return PostgresHotTier(source)


def _clickhouse(source: SourceSpec) -> HotTier:
    from offload_pipeline.core.sources.clickhouse import ClickHouseHotTier

    return ClickHouseHotTier(source)


# one opener per `SourceKind`; config validation admits no other kind
_OPENERS: dict[SourceKind, Callable[[SourceSpec], HotTier]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "clickhouse": _clickhouse,
}


def open_source(source: SourceSpec) -> HotTier:
    """The hot tier of a configured source; opening it does not connect yet.

    Args:
        source: a validated source spec.

    Returns:
        The backend for ``source.kind``; its ``snapshot`` connects.
    """
    return _OPENERS[source.kind](source)


def null_cursor_error(spec: TableSpec, counts: dict[str, int]) -> NullCursorError:
    """The refusal of a table whose hot tier holds rows with a NULL cursor column.

    Args:
        spec: the table.
        counts: ``SourceSnapshot.null_cursor_rows()``, not empty.
    """
    found = ", ".join(f"{n} row(s) with '{column}' NULL" for column, n in counts.items())
    return NullCursorError(
        f"table '{spec.name}': source table '{spec.source_table}' has {found}; no window holds "
        f"such rows, so they would never be offloaded: {NullCursorError.remedy} "
        "(nothing was written)"
    )
