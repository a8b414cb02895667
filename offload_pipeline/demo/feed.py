"""The embedded demo hot tier: SQLite bronze trade tables and a synthetic trade feed.

The tables mirror the original deployment's bronze tables. Timestamps are integer microseconds
since the epoch (UTC), the convention the SQLite source reads as Iceberg ``timestamptz``.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from threading import Event

import pyarrow as pa

from offload_pipeline.core.sources import TIMESTAMP, quote
from offload_pipeline.core.window import MICROS

log = logging.getLogger(__name__)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT")
_BASE_PRICE = {"BTC": 67_000, "ETH": 3_400, "SOL": 150, "XRP": 0.6, "ADA": 0.45, "DOGE": 0.15}

_DECIMAL = pa.decimal128(18, 8)
# the demo table as Arrow: what every source delivers for it, and what the Iceberg table holds
TRADES_SCHEMA = pa.schema(
    [
        pa.field("exchange_timestamp", TIMESTAMP, nullable=False),
        pa.field("sequence_number", pa.int64(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("price", _DECIMAL, nullable=False),
        pa.field("quantity", _DECIMAL, nullable=False),
        pa.field("quote_volume", _DECIMAL, nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("ingestion_timestamp", TIMESTAMP, nullable=False),
    ]
)
COLUMNS = tuple(TRADES_SCHEMA.names)


def trade_timestamps(
    rng: random.Random,
    rows: int,
    start_us: int,
    end_us: int,
    *,
    tie_fraction: float = 0.1,
    late_fraction: float = 0.0,
    watermark: int | None = None,
) -> list[int]:
    """Event times of ``rows`` trades in ``[start_us, end_us]``, ``late_fraction`` of them
    behind ``watermark``, ``tie_fraction`` sharing the previous trade's microsecond."""
    timestamps = _timestamps(rng, rows, start_us, max(end_us, start_us), tie_fraction)
    if watermark is not None and late_fraction > 0:
        timestamps = [
            watermark - rng.randint(1, 600 * MICROS) if rng.random() < late_fraction else ts
            for ts in timestamps
        ]
    return timestamps


def connect(path: Path) -> sqlite3.Connection:
    """A writer connection in WAL mode, so offload runs can read while the feed writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def create_table(conn: sqlite3.Connection, table: str) -> None:
    """Create a bronze trades table and its cursor index if missing."""
    name = quote(table)
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {name} (
            exchange_timestamp TIMESTAMP NOT NULL,
            sequence_number BIGINT NOT NULL PRIMARY KEY,
            symbol TEXT NOT NULL,
            price DECIMAL(18,8) NOT NULL,
            quantity DECIMAL(18,8) NOT NULL,
            quote_volume DECIMAL(18,8) NOT NULL,
            event_time TIMESTAMP NOT NULL,
            kafka_offset BIGINT NOT NULL,
            kafka_partition INT NOT NULL,
            ingestion_timestamp TIMESTAMP NOT NULL
        )"""
    )
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(table + '_cursor')} "
        f"ON {name} (exchange_timestamp, sequence_number)"
    )


def seed(
    path: Path,
    tables: Iterable[str],
    rows: int,
    *,
    span_seconds: float = 3600.0,
    late_fraction: float = 0.0,
    tie_fraction: float = 0.1,
    watermarks: dict[str, int | None] | None = None,
    now: float | None = None,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Write ``rows`` trades into each table, spread over the ``span_seconds`` before ``now``.

    ``late_fraction`` of them get an event time behind the table's committed watermark (from
    ``watermarks``; tables without one get ordinary rows), ``tie_fraction`` share the previous
    row's timestamp. Returns rows written per table.
    """
    rng = rng or random.Random()
    now_us = int((now if now is not None else time.time()) * MICROS)
    written = {}
    with connect(path) as conn:
        for table in tables:
            create_table(conn, table)
            # continue after the newest row, so only the rows asked to be late are late
            newest = conn.execute(f"SELECT max(exchange_timestamp) FROM {quote(table)}")
            start_us = max(now_us - int(span_seconds * MICROS), (newest.fetchone()[0] or 0) + 1)
            timestamps = trade_timestamps(
                rng,
                rows,
                start_us,
                now_us,
                tie_fraction=tie_fraction,
                late_fraction=late_fraction,
                watermark=(watermarks or {}).get(table),
            )
            _insert(conn, table, timestamps, rng, now_us)
            written[table] = rows
    return written


def seed_bulk(path: Path, table: str, rows: int, start_us: int, end_us: int) -> None:
    """Write ``rows`` trades evenly spread over ``[start_us, end_us)``, generated inside SQLite.

    For volumes where the row-by-row ``seed`` would dominate (millions of rows in seconds);
    sequence numbers and offsets continue after the table's largest.
    """
    with connect(path) as conn:
        create_table(conn, table)
        name = quote(table)
        (seq,) = conn.execute(f"SELECT coalesce(max(sequence_number), 0) FROM {name}").fetchone()
        step = max(1, (end_us - start_us) // max(rows, 1))
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
            INSERT INTO {name} ({", ".join(COLUMNS)})
            SELECT ? + i * ?, ? + i,
                   CASE i % 4 WHEN 0 THEN 'BTCUSDT' WHEN 1 THEN 'ETHUSDT' WHEN 2 THEN 'SOLUSDT'
                        ELSE 'XRPUSDT' END,
                   printf('%.8f', 1000 + (abs(random()) % 100000000) / 1e4),
                   printf('%.8f', (abs(random()) % 1000000000) / 1e8),
                   printf('%.8f', (abs(random()) % 100000000000) / 1e4),
                   ? + i * ? - 1000, ? + i, (? + i) % 6, ? + i * ?
            FROM n""",
            (rows, start_us, step, seq + 1, start_us, step, seq + 1, seq + 1, start_us, step),
        )


def generate(
    path: Path,
    tables: Iterable[str],
    rate: float,
    stop: Event,
    *,
    tick_seconds: float = 0.5,
    rng: random.Random | None = None,
) -> int:
    """Keep writing ``rate`` trades per second into each table until ``stop`` is set."""
    rng = rng or random.Random()
    tables = tuple(tables)
    total = 0
    carry = 0.0
    with connect(path) as conn:
        for table in tables:
            create_table(conn, table)
        conn.commit()
        while not stop.is_set():
            started = time.monotonic()
            carry += rate * tick_seconds
            count, carry = int(carry), carry - int(carry)
            now_us = int(time.time() * MICROS)
            for table in tables:
                # exchanges deliver slightly out of order: event times up to 2 s behind arrival
                stamps = sorted(now_us - rng.randint(0, 2 * MICROS) for _ in range(count))
                _insert(conn, table, stamps, rng, now_us)
            conn.commit()
            total += count * len(tables)
            stop.wait(max(0.0, tick_seconds - (time.monotonic() - started)))
    return total


def _timestamps(
    rng: random.Random, rows: int, start_us: int, end_us: int, tie_fraction: float
) -> list[int]:
    step = max(1, (end_us - start_us) // max(rows, 1))
    stamps: list[int] = []
    ts = start_us
    for i in range(rows):
        if i and rng.random() < tie_fraction:
            stamps.append(stamps[-1])  # same microsecond as the previous trade
            continue
        ts += rng.randint(1, 2 * step - 1) if step > 1 else 1
        stamps.append(min(ts, end_us))
    return stamps


def _insert(
    conn: sqlite3.Connection, table: str, timestamps: list[int], rng: random.Random, now_us: int
) -> None:
    if not timestamps:
        return
    name = quote(table)
    next_seq, next_offset = conn.execute(
        f"SELECT coalesce(max(sequence_number), 0) + 1, coalesce(max(kafka_offset), 0) + 1 "
        f"FROM {name}"
    ).fetchone()
    placeholders = ", ".join("?" * len(COLUMNS))
    conn.executemany(
        f"INSERT INTO {name} ({', '.join(COLUMNS)}) VALUES ({placeholders})",
        trade_rows(timestamps, next_seq, next_offset, rng, now_us),
    )


def trade_rows(
    timestamps: list[int], seq: int, offset: int, rng: random.Random, now_us: int
) -> Iterator[tuple[object, ...]]:
    """Trades at ``timestamps`` as tuples in ``COLUMNS`` order, sequence from ``seq``; decimals
    as strings, timestamps as integer microseconds."""
    for i, ts in enumerate(timestamps):
        symbol = SYMBOLS[rng.randrange(len(SYMBOLS))]
        base = _BASE_PRICE[symbol.removesuffix("USDT")]
        # at most 15 significant digits: what SQLite keeps exactly in a DECIMAL (REAL) column
        price = Decimal(str(round(base * (0.9 + rng.random() * 0.2), 8)))
        quantity = Decimal(str(round(rng.random() * 10, 8)))
        quote_volume = round(price * quantity, 8)
        yield (
            ts,
            seq + i,
            symbol,
            str(price),
            str(quantity),
            str(quote_volume),
            ts - rng.randint(0, 5_000),
            offset + i,
            (seq + i) % 6,
            now_us,
        )
