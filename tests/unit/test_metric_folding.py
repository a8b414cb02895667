"""Folding finished attempts into the cumulative totals the metrics sensor keeps and pushes."""

from hypothesis import given
from hypothesis import strategies as st

from offload_pipeline.defs.eventlog import Attempt
from offload_pipeline.defs.metrics import MetricsState, cycle_status, fold_attempt, fold_cycle
from offload_pipeline.metrics.collect import CycleTotals, Histogram, TableTotals

BUCKETS = (1.0, 5.0, 30.0)


def attempt(table: str = "t", success: bool = True, **kwargs) -> Attempt:
    kwargs.setdefault("started_at", 100.0)
    kwargs.setdefault("finished_at", 102.5)
    return Attempt(table, "run", success, **kwargs)


def test_an_observation_on_a_bound_falls_in_that_bucket_and_cumulates_upwards():
    h = Histogram(BUCKETS)
    for value in (0.5, 1.0, 1.5, 30.0, 31.0):
        h.observe(value)
    assert h.cumulative() == [("1.0", 2), ("5.0", 3), ("30.0", 4), ("+Inf", 5)]
    assert (h.count, h.total) == (5, 64.0)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
def test_a_histogram_survives_its_json_round_trip(values):
    h = Histogram(BUCKETS)
    for value in values:
        h.observe(value)
    again = Histogram.from_json(BUCKETS, h.to_json())
    assert again == h
    assert again.cumulative()[-1] == ("+Inf", len(values))


def test_a_histogram_stored_with_other_buckets_starts_again():
    stored = Histogram((1.0, 2.0))
    stored.observe(1.5)
    assert Histogram.from_json(BUCKETS, stored.to_json()) == Histogram(BUCKETS)
    assert Histogram.from_json(BUCKETS, None) == Histogram(BUCKETS)


def test_a_success_counts_its_duration_and_its_throughput_when_it_wrote_rows():
    totals = TableTotals()
    fold_attempt(totals, attempt(rows=1_000, rows_per_second=20_000.0))
    fold_attempt(totals, attempt(rows=0, rows_per_second=0.0))  # nothing new: no throughput
    assert (totals.success, totals.failure, totals.errors) == (2, 0, {})
    assert totals.duration.count == 2 and totals.duration.total == 5.0
    assert totals.rows_per_second.count == 1 and totals.rows_per_second.total == 20_000.0


def test_a_failure_counts_by_error_type_and_unknown_when_none_was_reported():
    totals = TableTotals()
    fold_attempt(totals, attempt(success=False, error_type="source_query"))
    fold_attempt(totals, attempt(success=False, error_type="source_query"))
    fold_attempt(totals, attempt(success=False))
    assert (totals.success, totals.failure) == (0, 3)
    assert totals.errors == {"source_query": 2, "unknown": 1}
    assert totals.duration.count == 3 and totals.rows_per_second.count == 0


def test_the_last_attempt_of_each_table_decides_the_cycle():
    retried = [attempt("a", False, error_type="commit_conflict"), attempt("a")]
    assert cycle_status(retried) == "success"
    assert cycle_status([*retried, attempt("b", False, error_type="source_query")]) == "partial"
    assert cycle_status([attempt("a"), attempt("a", False, error_type="timeout")]) == "failed"
    assert cycle_status([]) == "failed"  # a cycle that ran nothing did not succeed


def test_a_cycle_counts_its_status_and_its_duration_when_known():
    cycles = CycleTotals()
    fold_cycle(cycles, [attempt("a"), attempt("b")], 42.0)
    fold_cycle(cycles, [attempt("a", False)], None)
    assert cycles.statuses == {"success": 1, "failed": 1}
    assert cycles.duration.count == 1 and cycles.last_duration == 42.0


def test_the_totals_survive_the_sensor_cursor():
    state = MetricsState(positions={"RUN_SUCCESS": 7})
    state.tables["a"] = TableTotals()
    fold_attempt(state.tables["a"], attempt(rows=10, rows_per_second=5_000.0))
    fold_attempt(state.tables["a"], attempt(success=False, error_type="timeout"))
    fold_cycle(state.cycles, [attempt("a")], 3.0)
    again = MetricsState.from_cursor(state.to_cursor())
    assert again == state
    assert MetricsState.from_cursor(None) == MetricsState()
