"""Window planning: which rows a run offloads. Pure functions, no I/O.

A run offloads the half-open cursor range ``(watermark, (hi, +inf)]``: every row whose
``(event_time, tie_breaker)`` is above the committed watermark and whose event time is at most
``hi = min(source max event time, now - settle delay)``. Time is integer microseconds since the
Unix epoch (UTC) throughout, the unit Iceberg stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from offload_pipeline.errors import SchemaMismatchError

MICROS = 1_000_000
HOUR = 3_600 * MICROS
DAY = 24 * HOUR
MAX_SEQ = 2**63 - 1
"""The largest tie-breaker: ``CursorValue(ts, MAX_SEQ)`` is the last possible cursor at ``ts``."""


class CursorValue(NamedTuple):
    """A row's position in cursor order: event time (µs) then tie-breaker."""

    ts: int
    seq: int


@dataclass(frozen=True)
class Watermark:
    """The cursor of the last committed row, as stored in the Iceberg table."""

    cursor: CursorValue
    run_id: str = ""
    committed_at_ms: int | None = None
    """wall-clock time of the commit that set it; kept in the table's properties because snapshot
    expiry may remove that commit's snapshot (None on tables last written before it was kept)"""


@dataclass(frozen=True)
class Window:
    """Rows with ``lo < (ts, seq)`` and ``ts <= hi_ts``; ``lo`` None means from the beginning."""

    lo: CursorValue | None
    hi_ts: int

    def contains(self, row: CursorValue) -> bool:
        return (self.lo is None or row > self.lo) and row.ts <= self.hi_ts


def time_range(start_ts: int, end_ts: int) -> Window:
    """The window of event times ``[start_ts, end_ts)``, whatever the tie-breakers."""
    return Window(lo=CursorValue(start_ts - 1, MAX_SEQ), hi_ts=end_ts - 1)


def plan_window(
    watermark: Watermark | None, source_max_ts: int | None, now_us: int, settle_delay_s: float
) -> Window | None:
    """Plan the next window, or None when nothing can be due.

    ``hi`` stops ``settle_delay_s`` short of now so rows still arriving for the newest
    timestamps (ties, out-of-order inserts) are read together in a later run, not split.
    """
    if source_max_ts is None:
        return None
    hi_ts = min(source_max_ts, now_us - int(settle_delay_s * MICROS))
    lo = watermark.cursor if watermark else None
    if lo is not None and hi_ts < lo.ts:
        return None
    return Window(lo=lo, hi_ts=hi_ts)


def lag_seconds(
    source_max_ts: int | None,
    watermark_ts: int | None,
    *,
    now_us: int,
    empty_source: float | None = None,
) -> float | None:
    """How far the committed watermark trails the hot tier, in seconds: ``min(source max, now)
    − watermark``.

    A hot-tier row stamped in the future is bad data, not lag: it must not page as lag (it has
    its own alert on the source max). Never negative; None before the first commit, and
    ``empty_source`` when the hot tier holds no row (callers disagree on that case: an offload
    result reports 0, an observation None).
    """
    if source_max_ts is None:
        return empty_source
    if watermark_ts is None:
        return None
    return max(0, min(source_max_ts, now_us) - watermark_ts) / MICROS


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds


def from_micros(us: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def iso(us: int | None) -> str | None:
    """ISO-8601 UTC text of microseconds since the epoch (None stays None)."""
    return None if us is None else from_micros(us).isoformat().replace("+00:00", "Z")


MIN_MICROS = to_micros(datetime.min.replace(tzinfo=UTC))
MAX_MICROS = to_micros(datetime.max.replace(tzinfo=UTC))
"""The event times a date can hold (years 1 to 9999): the watermark is kept as ISO text too."""


def checked_event_time(us: int | None, table: str, column: str) -> int | None:
    """``us``, a hot-tier event time, refused when no date holds it.

    Raises:
        SchemaMismatchError: ``us`` lies outside years 1 to 9999; names table, column and value.
    """
    if us is not None and not MIN_MICROS <= us <= MAX_MICROS:
        years = "after 9999" if us > MAX_MICROS else "before year 1"
        raise SchemaMismatchError(
            f"table '{table}': column '{column}': event time {us} µs lies {years}, outside the "
            "dates a watermark can hold: fix or delete the row in the hot tier (runs write "
            "nothing until then)"
        )
    return us
