"""Commit-sized chunks: never a watermark inside a group of equal cursors, every row once in
order; the read-ahead thread hands errors over and stops with its caller."""

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offload_pipeline.config import Cursor
from offload_pipeline.core.chunking import boundary, chunks, last_cursor, read_ahead
from offload_pipeline.core.window import CursorValue

CURSOR = Cursor(event_time="ts", tie_breaker="seq")
SCHEMA = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("seq", pa.int64()), ("row", pa.int64())])


def batches(cursors: list[tuple[int, int]], sizes: list[int]) -> Iterator[pa.RecordBatch]:
    """``cursors`` (in order) as record batches of the given sizes (0: an empty batch)."""
    start = 0
    for size in [*sizes, len(cursors)]:
        part = cursors[start : start + size]
        start += len(part)
        yield pa.RecordBatch.from_pydict(
            {
                "ts": [ts for ts, _ in part],
                "seq": [seq for _, seq in part],
                "row": list(range(start - len(part), start)),
            },
            schema=SCHEMA,
        )
        if start == len(cursors):
            return


def cursors_of(table: pa.Table) -> list[tuple[int, int]]:
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    return list(zip(ts, table["seq"].to_pylist(), strict=True))


def test_a_chunk_ends_before_a_group_of_equal_cursors_it_would_split():
    # rows 3..5 share a cursor: a cut after 4 rows would put the watermark inside them
    rows = [(1, 1), (2, 1), (3, 1), (4, 1), (4, 1), (4, 1), (5, 1), (6, 1)]
    out = list(chunks(batches(rows, [8]), 4, CURSOR))
    assert [len(c) for c in out] == [3, 4, 1]
    assert [cursors_of(c) for c in out] == [rows[:3], rows[3:7], rows[7:]]


def test_a_group_of_equal_cursors_longer_than_a_chunk_is_one_chunk():
    rows = [(1, 1)] * 10 + [(2, 1), (3, 1)]
    out = list(chunks(batches(rows, [3, 3, 3, 3]), 4, CURSOR))
    assert [len(c) for c in out] == [10, 2]
    assert cursors_of(out[0]) == [(1, 1)] * 10


def test_a_read_of_one_cursor_value_only_is_one_chunk():
    out = list(chunks(batches([(7, 7)] * 9, [2, 2, 2]), 2, CURSOR))
    assert [len(c) for c in out] == [9]


def test_empty_batches_are_skipped():
    rows = [(1, 1), (2, 1), (3, 1)]
    out = list(chunks(batches(rows, [0, 2, 0, 0, 1, 0]), 2, CURSOR))
    assert [cursors_of(c) for c in out] == [rows[:2], rows[2:]]
    assert list(chunks(batches([], [0, 0]), 2, CURSOR)) == []


def test_boundary_moves_back_to_the_start_of_a_group_or_past_it():
    table = pa.Table.from_batches(list(batches([(1, 1), (2, 2), (2, 2), (2, 2), (3, 3)], [5])))
    assert boundary(table, 2, CURSOR) == 1  # back to the start of the (2, 2) group
    assert boundary(table, 1, CURSOR) == 1  # already a change of cursor
    single = pa.Table.from_batches(list(batches([(2, 2)] * 3 + [(3, 3)], [4])))
    assert boundary(single, 1, CURSOR) == 3  # forward past the group
    assert boundary(single.slice(0, 3), 1, CURSOR) is None


def test_last_cursor_is_the_cursor_of_the_last_row():
    table = pa.Table.from_batches(list(batches([(1, 9), (5, 2)], [2])))
    assert last_cursor(table, CURSOR) == CursorValue(5, 2)


# cursor-ordered rows with many ties, split into batches of any size, chunked at any size
ordered_rows = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 2)), min_size=0, max_size=80
).map(sorted)


@given(
    rows=ordered_rows,
    sizes=st.lists(st.integers(0, 9), max_size=20),
    batch_rows=st.integers(1, 12),
)
def test_chunks_hold_every_row_once_in_order_and_boundaries_are_watermarks(rows, sizes, batch_rows):
    out = list(chunks(batches(rows, sizes), batch_rows, CURSOR))
    assert [r for c in out for r in c["row"].to_pylist()] == list(range(len(rows)))
    assert [cursor for c in out for cursor in cursors_of(c)] == rows
    for chunk in out:
        assert len(chunk) > 0
        # longer than asked only when the whole chunk is one group of equal cursors
        assert len(chunk) <= batch_rows or len(set(cursors_of(chunk))) == 1
    for before, after in zip(out, out[1:], strict=False):
        assert cursors_of(before)[-1] < cursors_of(after)[0]


def readers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "offload-reader" and t.is_alive()]


def test_read_ahead_yields_every_item_in_order():
    assert list(read_ahead(i for i in range(5))) == [0, 1, 2, 3, 4]
    assert readers_alive() == []


def test_read_ahead_raises_the_readers_error_to_the_caller():
    def failing():
        yield "first"
        raise ValueError("hot tier went away")

    reader = read_ahead(failing())
    assert next(reader) == "first"
    with pytest.raises(ValueError, match="hot tier went away"):
        next(reader)
    assert readers_alive() == []


def test_read_ahead_stops_the_reader_when_the_caller_stops_early():
    produced: list[int] = []
    closed = threading.Event()

    def endless():
        try:
            while True:
                produced.append(len(produced))
                yield produced[-1]
        finally:
            closed.set()

    reader = read_ahead(endless())
    assert next(reader) == 0
    reader.close()
    assert closed.is_set()
    assert readers_alive() == []
    # a hand-off, not a buffer: the reader got at most two items ahead of the caller
    assert len(produced) <= 3
