"""The durable state codec: table properties in, the committed state out, and back as strings."""

from hypothesis import given
from hypothesis import strategies as st

from offload_pipeline.core.iceberg import state
from offload_pipeline.core.iceberg.state import (
    ALL_KEYS,
    BACKFILL_COMMIT,
    MAINTENANCE_COMMIT,
    OFFLOAD_COMMIT,
    SCHEMA_COMMIT,
    CommittedState,
    LookbackCount,
    decode_state,
    encode_state,
)
from offload_pipeline.core.window import CursorValue, Watermark

FULL = CommittedState(
    watermark=Watermark(
        CursorValue(1_795_763_748_901_451, 42), run_id="run-7", committed_at_ms=1_795_763_750_002
    ),
    rows_total=1_000_000,
    late_rows_total=37,
    lookback=LookbackCount(
        lo_ts=1_795_760_148_901_451, hi=CursorValue(1_795_763_748_901_451, 42), count=900
    ),
    schema_changes_total=2,
    late_rows_repaired_total=30,
    maintained_at=1_795_763_800.125,
)


def test_every_field_survives_a_round_trip():
    assert decode_state(encode_state(FULL)) == FULL


def test_a_table_without_properties_has_the_defaults():
    empty = decode_state({})
    assert empty == CommittedState()
    assert empty.watermark is None and empty.lookback is None and empty.maintained_at is None
    assert (empty.rows_total, empty.late_rows_total, empty.schema_changes_total) == (0, 0, 0)
    assert empty.late_rows_repaired_total == 0 and empty.late_rows_outstanding == 0


def test_every_value_written_is_a_string():
    # pyiceberg writes an int as a JSON number, which breaks inspect.snapshots() for good
    properties = encode_state(FULL)
    assert properties and all(isinstance(v, str) for v in properties.values())


def test_the_full_state_writes_every_key_and_only_offload_keys():
    assert set(encode_state(FULL)) == set(ALL_KEYS)
    assert all(key.startswith("offload.") for key in ALL_KEYS)


def test_readable_copies_of_the_times_are_written():
    properties = encode_state(FULL)
    assert properties[state.WATERMARK_ISO] == "2026-11-27T07:15:48.901451Z"
    assert properties[state.MAINTENANCE_TS] == "1795763800.125"
    assert properties[state.MAINTENANCE_ISO] == "2026-11-27T07:16:40.125000+00:00"


def test_each_commit_writes_only_its_own_keys():
    assert set(encode_state(FULL, OFFLOAD_COMMIT)) == set(OFFLOAD_COMMIT)
    assert encode_state(FULL, SCHEMA_COMMIT) == {state.SCHEMA_CHANGES_TOTAL: "2"}
    assert encode_state(FULL, BACKFILL_COMMIT) == {state.LATE_ROWS_REPAIRED_TOTAL: "30"}
    assert set(encode_state(FULL, MAINTENANCE_COMMIT)) == set(MAINTENANCE_COMMIT)


def test_parts_never_set_write_no_key():
    properties = encode_state(CommittedState(rows_total=5), OFFLOAD_COMMIT)
    assert properties == {state.ROWS_TOTAL: "5", state.LATE_ROWS_TOTAL: "0"}


def test_other_properties_of_the_table_are_ignored():
    properties = {**encode_state(FULL), "commit.retry.num-retries": "0", "offload.table": "t"}
    assert decode_state(properties) == FULL


counters = st.integers(0, 2**62)
event_times = st.integers(0, 253_402_300_799_999_999)  # up to the last µs of year 9999
cursors = st.builds(CursorValue, event_times, st.integers(0, 2**63 - 1))
states = st.builds(
    CommittedState,
    watermark=st.none() | st.builds(Watermark, cursors, st.text(max_size=40)),
    rows_total=counters,
    late_rows_total=counters,
    lookback=st.none() | st.builds(LookbackCount, event_times, cursors, counters),
    schema_changes_total=counters,
    late_rows_repaired_total=counters,
    # milliseconds: the property keeps three decimals
    maintained_at=st.none() | st.integers(0, 4_000_000_000_000).map(lambda ms: ms / 1000),
)


@given(states)
def test_any_state_survives_a_round_trip(committed):
    assert decode_state(encode_state(committed)) == committed


def test_only_an_offload_snapshot_moved_the_watermark():
    offload = {state.SUMMARY_RUN_ID: "r1", state.SUMMARY_ROWS: "10"}
    assert state.is_offload_commit(offload)
    backfill_append = {**offload, state.SUMMARY_BACKFILL: "[a, b)"}
    backfill_delete = {state.SUMMARY_RUN_ID: "r2", state.SUMMARY_BACKFILL: "[a, b)"}
    compaction = {state.SUMMARY_MAINTENANCE: "compaction", state.SUMMARY_RUN_ID: "r3"}
    for summary in (backfill_append, backfill_delete, compaction, {}):
        assert not state.is_offload_commit(summary), summary
