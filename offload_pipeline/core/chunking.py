"""Commit-sized chunks of a hot-tier read, and a reader thread that prepares the next one.

A chunk boundary is a watermark, so chunks never split rows sharing a cursor value: every commit
then leaves a watermark below which all rows are committed and above which none are.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator

import pyarrow as pa

from offload_pipeline.config import Cursor
from offload_pipeline.core.failpoints import failpoint
from offload_pipeline.core.window import CursorValue


def last_cursor(chunk: pa.Table, cursor: Cursor) -> CursorValue:
    """The cursor of the last row of ``chunk`` (the watermark once it is committed)."""
    ts = chunk.column(cursor.event_time)[-1]
    seq = chunk.column(cursor.tie_breaker)[-1]
    return CursorValue(int(ts.value), int(seq.as_py()))


def chunks(
    batches: Iterator[pa.RecordBatch], batch_rows: int, cursor: Cursor
) -> Generator[pa.Table, None, None]:
    """Regroup batches into commit-sized tables that never split rows of one cursor value.

    A chunk ends after ``batch_rows`` rows, moved back to the start of a run of equal cursors
    (or forward past it, if one run is longer than a chunk), so a watermark between two chunks
    never falls inside a group of rows sharing a cursor.
    """
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count > batch_rows:
            table = pa.Table.from_batches(pending)
            cut = boundary(table, batch_rows, cursor)
            if cut is None:
                break  # one cursor value runs to the end of what was read: read on
            failpoint("read")
            yield table.slice(0, cut)
            rest = table.slice(cut)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def boundary(table: pa.Table, target: int, cursor: Cursor) -> int | None:
    """A cut near ``target`` where the cursor changes between row ``cut - 1`` and ``cut``; None
    when every row of ``table`` shares one cursor value."""
    ts = table.column(cursor.event_time)
    seq = table.column(cursor.tie_breaker)

    def at(i: int) -> CursorValue:
        return CursorValue(int(ts[i].value), int(seq[i].as_py()))

    cut = target
    while cut > 0 and at(cut - 1) == at(cut):
        cut -= 1
    if cut > 0:
        return cut
    cut = target + 1
    while cut < table.num_rows and at(cut - 1) == at(cut):
        cut += 1
    return cut if cut < table.num_rows else None


_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Generator[pa.Table, None, None]) -> Iterator[pa.Table]:
    """Iterate ``items`` in a thread so reading the next chunk overlaps writing this one.

    A hand-off, not a buffer: the reader starts on chunk k+1 when the caller takes chunk k, so at
    most two chunks are in memory at once. An error of the reader is raised to the caller; a
    caller that stops early stops the reader too (and ``items`` is closed).
    """
    slot: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slot.put(item)
                slot.join()  # wait until the caller has taken it
            slot.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises
            slot.put(_Failed(e))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="offload-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slot.get()
            slot.task_done()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting to hand over
            try:
                slot.get_nowait()
                slot.task_done()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
