"""Tables of one hot tier looked at one after another share its connection, and each look still
sees the hot tier as it is then."""

import time

from offload_pipeline.core.status import shared_sources
from offload_pipeline.core.window import MICROS
from tests.hot_tiers import DEMO_TABLES


def test_each_look_through_a_shared_connection_sees_rows_written_since(project):
    project.seed(10, table=DEMO_TABLES[0], now=time.time() - 3600)
    project.seed(10, table=DEMO_TABLES[1], now=time.time() - 3600)
    handles = [project.table(name) for name in DEMO_TABLES[:2]]
    with shared_sources(handles) as shared:
        assert shared[0].source is shared[1].source
        with shared[0].source.snapshot(shared[0].spec) as snap:
            before = snap.max_event_time()
        project.seed(10, table=DEMO_TABLES[0])  # newer rows, written between two looks
        with shared[0].source.snapshot(shared[0].spec) as snap:
            after = snap.max_event_time()
        with shared[1].source.snapshot(shared[1].spec) as snap:
            other = snap.max_event_time()
    assert before is not None and after is not None and other is not None
    assert after - before > 1800 * MICROS
    assert other < after
