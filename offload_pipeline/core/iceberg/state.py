"""The durable format: every key the offload writes into an Iceberg table, and its one codec.

Table properties hold the watermark, the cumulative counters, the late-row lookback and the last
maintenance, committed atomically with what they describe; snapshot-summary keys record what one
commit did. Every value is a string: pyiceberg writes an int as a JSON number, which breaks
``table.inspect.snapshots()`` for good.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from offload_pipeline.config import TableSpec
from offload_pipeline.core.window import CursorValue, Watermark, iso

# table properties set when the table is created
TABLE_DEFAULTS = {
    # a concurrent commit must fail: pyiceberg would otherwise rebuild our append on top of the
    # winner's snapshot and land the same rows twice
    "commit.retry.num-retries": "0",
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    # a column's dictionary is given up for plain encoding once it outgrows this: high-cardinality
    # columns (keys, timestamps, prices) stop paying for a 2 MB dictionary they then discard, which
    # made the Parquet write 2-3x faster and its files ~35 % smaller (benchmarks/README.md);
    # low-cardinality columns (symbols, codes) stay dictionary-encoded
    "write.parquet.dict-size-bytes": str(64 * 1024),
}
TABLE_NAME = "offload.table"
"""the configured table name; set at creation, never read back"""

# the watermark: absent until the first offload commit
WATERMARK_TS = "offload.watermark.ts-us"
WATERMARK_SEQ = "offload.watermark.seq"
WATERMARK_ISO = "offload.watermark.iso"
"""the watermark's event time, readable (written, never read back)"""
WATERMARK_RUN_ID = "offload.watermark.run-id"
"""run id of the commit that set the watermark; "" when absent"""
WATERMARK_COMMITTED_AT = "offload.watermark.committed-at-ms"
"""epoch milliseconds of the commit that set the watermark"""

# cumulative counters: absent means 0
COUNTER_DEFAULT = "0"
ROWS_TOTAL = "offload.rows-total"
LATE_ROWS_TOTAL = "offload.late-rows-total"
SCHEMA_CHANGES_TOTAL = "offload.schema-changes-total"
LATE_ROWS_REPAIRED_TOTAL = "offload.late-rows-repaired-total"

# the hot-tier row count behind the watermark at the last commit: absent until the first one
LOOKBACK_LO_TS = "offload.lookback.lo-ts-us"
LOOKBACK_HI_TS = "offload.lookback.hi-ts-us"
LOOKBACK_HI_SEQ = "offload.lookback.hi-seq"
LOOKBACK_COUNT = "offload.lookback.count"

# end of the last successful maintenance: absent when never maintained
MAINTENANCE_TS = "offload.maintenance.last-timestamp"
"""epoch seconds, three decimals"""
MAINTENANCE_ISO = "offload.maintenance.last-iso"
"""the same instant, readable (written, never read back)"""

# the keys each kind of commit sets: a commit records only what it changed, so it never undoes
# another writer's property-only commit of other keys (those are not conflict-checked)
OFFLOAD_COMMIT = (
    WATERMARK_TS,
    WATERMARK_SEQ,
    WATERMARK_ISO,
    WATERMARK_RUN_ID,
    WATERMARK_COMMITTED_AT,
    ROWS_TOTAL,
    LATE_ROWS_TOTAL,
    LOOKBACK_LO_TS,
    LOOKBACK_HI_TS,
    LOOKBACK_HI_SEQ,
    LOOKBACK_COUNT,
)
SCHEMA_COMMIT = (SCHEMA_CHANGES_TOTAL,)
BACKFILL_COMMIT = (LATE_ROWS_REPAIRED_TOTAL,)
MAINTENANCE_COMMIT = (MAINTENANCE_TS, MAINTENANCE_ISO)
ALL_KEYS = OFFLOAD_COMMIT + SCHEMA_COMMIT + BACKFILL_COMMIT + MAINTENANCE_COMMIT

# snapshot summary keys: what one commit did
SUMMARY_RUN_ID = "offload.run-id"
"""the run that made the snapshot (offload, backfill, compaction)"""
SUMMARY_ROWS = "offload.rows"
"""rows appended by the snapshot"""
SUMMARY_BACKFILL = "offload.backfill"
"""the replaced range, ``[start, end)``, on a backfill's snapshots"""
SUMMARY_MAINTENANCE = "offload.maintenance"
"""``compaction`` on the snapshot that rewrote small files"""


def is_offload_commit(summary: Mapping[str, str]) -> bool:
    """A snapshot appended by an offload, which moved the watermark (backfills and compactions
    never move it)."""
    return SUMMARY_ROWS in summary and SUMMARY_BACKFILL not in summary


@dataclass(frozen=True)
class LookbackCount:
    """Rows the hot tier held in ``[lo_ts, hi]`` when the watermark was last committed."""

    lo_ts: int
    hi: CursorValue
    count: int


@dataclass(frozen=True)
class CommittedState:
    """The offload state committed in an Iceberg table (the defaults: a table never written)."""

    watermark: Watermark | None = None
    rows_total: int = 0
    late_rows_total: int = 0
    lookback: LookbackCount | None = None
    schema_changes_total: int = 0
    late_rows_repaired_total: int = 0
    """late rows that backfills have since added to Iceberg"""
    maintained_at: float | None = None
    """end of the last successful maintenance (epoch seconds); None if never"""

    @property
    def late_rows_outstanding(self) -> int:
        """Late rows counted but not yet repaired by a backfill (never negative)."""
        return max(0, self.late_rows_total - self.late_rows_repaired_total)


def decode_state(properties: Mapping[str, str]) -> CommittedState:
    """The committed offload state, from a table's properties."""
    watermark = None
    if WATERMARK_TS in properties:
        watermark = Watermark(
            cursor=CursorValue(int(properties[WATERMARK_TS]), int(properties[WATERMARK_SEQ])),
            run_id=properties.get(WATERMARK_RUN_ID, ""),
            committed_at_ms=(
                int(properties[WATERMARK_COMMITTED_AT])
                if WATERMARK_COMMITTED_AT in properties
                else None
            ),
        )
    lookback = None
    if LOOKBACK_COUNT in properties:
        lookback = LookbackCount(
            lo_ts=int(properties[LOOKBACK_LO_TS]),
            hi=CursorValue(int(properties[LOOKBACK_HI_TS]), int(properties[LOOKBACK_HI_SEQ])),
            count=int(properties[LOOKBACK_COUNT]),
        )
    maintained = properties.get(MAINTENANCE_TS)

    def counter(key: str) -> int:
        return int(properties.get(key, COUNTER_DEFAULT))

    return CommittedState(
        watermark=watermark,
        rows_total=counter(ROWS_TOTAL),
        late_rows_total=counter(LATE_ROWS_TOTAL),
        lookback=lookback,
        schema_changes_total=counter(SCHEMA_CHANGES_TOTAL),
        late_rows_repaired_total=counter(LATE_ROWS_REPAIRED_TOTAL),
        maintained_at=float(maintained) if maintained else None,
    )


def encode_state(state: CommittedState, keys: Collection[str] = ALL_KEYS) -> dict[str, str]:
    """``state`` as table properties (parts that are None have no key), limited to ``keys``."""
    properties = {
        ROWS_TOTAL: str(state.rows_total),
        LATE_ROWS_TOTAL: str(state.late_rows_total),
        SCHEMA_CHANGES_TOTAL: str(state.schema_changes_total),
        LATE_ROWS_REPAIRED_TOTAL: str(state.late_rows_repaired_total),
    }
    if state.watermark is not None:
        properties |= {
            WATERMARK_TS: str(state.watermark.cursor.ts),
            WATERMARK_SEQ: str(state.watermark.cursor.seq),
            WATERMARK_ISO: iso(state.watermark.cursor.ts) or "",
            WATERMARK_RUN_ID: state.watermark.run_id,
        }
        if state.watermark.committed_at_ms is not None:
            properties[WATERMARK_COMMITTED_AT] = str(state.watermark.committed_at_ms)
    if state.lookback is not None:
        properties |= {
            LOOKBACK_LO_TS: str(state.lookback.lo_ts),
            LOOKBACK_HI_TS: str(state.lookback.hi.ts),
            LOOKBACK_HI_SEQ: str(state.lookback.hi.seq),
            LOOKBACK_COUNT: str(state.lookback.count),
        }
    if state.maintained_at is not None:
        properties |= {
            MAINTENANCE_TS: f"{state.maintained_at:.3f}",
            MAINTENANCE_ISO: datetime.fromtimestamp(state.maintained_at, UTC).isoformat(),
        }
    return {key: value for key, value in properties.items() if key in keys}


def creation_properties(spec: TableSpec) -> dict[str, str]:
    """The properties a new table of ``spec`` is created with."""
    return {**TABLE_DEFAULTS, TABLE_NAME: spec.name}
