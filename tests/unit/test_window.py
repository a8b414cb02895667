"""Window planning: the pure rules deciding which rows a run offloads."""

from hypothesis import given
from hypothesis import strategies as st

from offload_pipeline.core.window import (
    MICROS,
    CursorValue,
    Watermark,
    Window,
    from_micros,
    iso,
    lag_seconds,
    plan_window,
    to_micros,
)

NOW = 1_800_000_000 * MICROS


def test_first_run_takes_everything_up_to_the_bound():
    window = plan_window(None, source_max_ts=NOW - 120 * MICROS, now_us=NOW, settle_delay_s=60)
    assert window == Window(lo=None, hi_ts=NOW - 120 * MICROS)


def test_settle_delay_caps_the_bound_below_now():
    window = plan_window(None, source_max_ts=NOW, now_us=NOW, settle_delay_s=60)
    assert window is not None and window.hi_ts == NOW - 60 * MICROS


def test_empty_hot_tier_plans_nothing():
    assert plan_window(None, source_max_ts=None, now_us=NOW, settle_delay_s=60) is None


def test_nothing_new_beyond_the_settle_delay_plans_nothing():
    wm = Watermark(CursorValue(NOW - 30 * MICROS, 7))
    # the newest rows are younger than the settle delay: not due yet
    assert plan_window(wm, source_max_ts=NOW, now_us=NOW, settle_delay_s=60) is None


def test_ties_at_the_watermark_timestamp_stay_in_the_window():
    wm = Watermark(CursorValue(NOW - 600 * MICROS, 5))
    window = plan_window(wm, source_max_ts=NOW - 600 * MICROS, now_us=NOW, settle_delay_s=60)
    assert window is not None
    assert window.contains(CursorValue(NOW - 600 * MICROS, 6))  # same ts, later sequence
    assert not window.contains(CursorValue(NOW - 600 * MICROS, 5))  # the committed row itself
    assert not window.contains(CursorValue(NOW - 600 * MICROS, 4))


def test_watermark_ahead_of_the_source_plans_nothing():
    wm = Watermark(CursorValue(NOW - 10 * MICROS, 1))
    assert plan_window(wm, source_max_ts=NOW - 3600 * MICROS, now_us=NOW, settle_delay_s=0) is None


def test_huge_backlog_is_one_window_to_the_bound():
    wm = Watermark(CursorValue(0, 0))
    window = plan_window(wm, source_max_ts=NOW - 61 * MICROS, now_us=NOW, settle_delay_s=60)
    assert window == Window(lo=CursorValue(0, 0), hi_ts=NOW - 61 * MICROS)


def test_micros_round_trip_and_iso():
    us = 1_795_763_748_901_451
    assert to_micros(from_micros(us)) == us
    assert iso(us) == "2026-11-27T07:15:48.901451Z"
    assert iso(None) is None


rows = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 5)), min_size=0, max_size=60, unique=True
)


@given(rows=rows, bounds=st.lists(st.integers(0, 60), min_size=1, max_size=8))
def test_successive_windows_cover_every_row_exactly_once(rows, bounds):
    """Offloading with any sequence of bounds yields each row once, in cursor order."""
    cursors = sorted(CursorValue(ts, seq) for ts, seq in rows)
    watermark = None
    taken: list[CursorValue] = []
    for now in [*sorted(bounds), 10_000]:
        source_max = max((c.ts for c in cursors), default=None)
        window = plan_window(watermark, source_max, now_us=now, settle_delay_s=0)
        if window is None:
            continue
        batch = [c for c in cursors if window.contains(c)]
        taken += batch
        if batch:
            watermark = Watermark(batch[-1])
    assert taken == cursors


def test_lag_is_the_event_time_the_watermark_trails_the_newest_row():
    assert lag_seconds(NOW, NOW - 90 * MICROS, now_us=NOW) == 90.0
    assert lag_seconds(NOW, NOW, now_us=NOW) == 0.0
    # a newest row from the past: the lag is event time, not the wall clock
    assert lag_seconds(NOW - 3600 * MICROS, NOW - 3690 * MICROS, now_us=NOW) == 90.0


def test_lag_is_never_negative():
    # a watermark ahead of the hot tier (its newest rows deleted by retention)
    assert lag_seconds(NOW - 5 * MICROS, NOW, now_us=NOW) == 0.0


def test_a_row_stamped_in_the_future_never_inflates_the_lag():
    a_day_ahead = NOW + 86_400 * MICROS
    assert lag_seconds(a_day_ahead, NOW - 90 * MICROS, now_us=NOW) == 90.0
    assert lag_seconds(a_day_ahead, NOW, now_us=NOW) == 0.0


@given(
    source_max=st.integers(0, 2 * NOW),
    watermark=st.integers(0, NOW),
    now=st.integers(NOW // 2, NOW),
)
def test_lag_is_bounded_by_the_wall_clock(source_max, watermark, now):
    lag = lag_seconds(source_max, watermark, now_us=now)
    assert lag is not None
    assert 0 <= lag <= max(0, now - watermark) / MICROS
    assert lag == max(0, min(source_max, now) - watermark) / MICROS


def test_lag_before_the_first_commit_is_unknown():
    assert lag_seconds(NOW, None, now_us=NOW) is None


def test_lag_of_an_empty_hot_tier_is_the_callers_choice():
    assert lag_seconds(None, NOW, now_us=NOW) is None
    assert lag_seconds(None, None, now_us=NOW, empty_source=0.0) == 0.0
    assert lag_seconds(None, NOW, now_us=NOW, empty_source=0.0) == 0.0
