"""The push budget: each push waits at most what is left, and an unreachable URL is skipped."""

from contextlib import nullcontext
from urllib.error import HTTPError, URLError

import pytest

from offload_pipeline.metrics.budget import (
    BUDGET_SECONDS,
    FAILURES_AFTER_ANSWERS,
    PUSH_TIMEOUT_SECONDS,
    TICK_BUDGET_CAP_SECONDS,
    PushBudget,
    tick_budget,
)

URL = "http://pushgateway.invalid:9091"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def push(budget: PushBudget, clock: Clock, seconds: float, error: Exception | None = None):
    timeout = budget.timeout(URL)
    if timeout is None:
        return None
    with pytest.raises(type(error)) if error else nullcontext(), budget.spending(URL):
        clock.now += min(seconds, timeout)
        if error:
            raise error
    return timeout


def test_each_push_waits_at_most_what_is_left_of_the_budget():
    clock = Clock()
    budget = PushBudget(seconds=5.0, clock=clock)
    assert push(budget, clock, 1.9) == PUSH_TIMEOUT_SECONDS
    assert push(budget, clock, 1.9) == PUSH_TIMEOUT_SECONDS
    assert push(budget, clock, 9.0) == pytest.approx(1.2)
    assert push(budget, clock, 0.1) is None
    assert (budget.attempts, budget.skipped) == (3, 1)


@pytest.mark.parametrize(
    "error", [TimeoutError("timed out"), URLError(ConnectionRefusedError()), ConnectionResetError()]
)
def test_a_transport_failure_skips_the_url_for_the_rest_of_the_budget(error):
    clock = Clock()
    budget = PushBudget(clock=clock)
    push(budget, clock, PUSH_TIMEOUT_SECONDS, error)
    assert all(push(budget, clock, 0.0) is None for _ in range(50))
    assert (budget.attempts, budget.skipped) == (1, 50)


def test_an_http_error_answer_keeps_the_url():
    clock = Clock()
    budget = PushBudget(clock=clock)
    push(budget, clock, 0.01, HTTPError(URL, 400, "bad metrics", {}, None))  # type: ignore[arg-type]
    assert push(budget, clock, 0.01) == PUSH_TIMEOUT_SECONDS


def test_pushes_waiting_at_the_same_time_are_charged_once():
    clock = Clock()
    budget = PushBudget(seconds=5.0, clock=clock)
    with budget.spending(URL):
        with budget.spending(URL):
            clock.now += 1.0
            assert budget.left == pytest.approx(4.0)
        clock.now += 1.0
    clock.now += 10.0  # time between pushes is not charged
    with budget.spending(URL):
        clock.now += 1.0
    assert budget.left == pytest.approx(2.0)


def test_a_tick_of_many_groups_gets_more_time_but_less_than_the_sensor_timeout():
    assert tick_budget(3).left == BUDGET_SECONDS
    assert BUDGET_SECONDS < tick_budget(1001).left <= TICK_BUDGET_CAP_SECONDS < 60
    assert tick_budget(100_000).left == TICK_BUDGET_CAP_SECONDS


def test_a_pushgateway_that_answered_is_skipped_only_after_failures_in_a_row():
    clock = Clock()
    budget = PushBudget(seconds=60.0, clock=clock)
    push(budget, clock, 0.01)
    for _ in range(3):  # a stall now and then, answers in between
        push(budget, clock, PUSH_TIMEOUT_SECONDS, TimeoutError("timed out"))
        push(budget, clock, 0.01)
    for _ in range(FAILURES_AFTER_ANSWERS):
        push(budget, clock, PUSH_TIMEOUT_SECONDS, TimeoutError("timed out"))
    assert push(budget, clock, 0.01) is None
    assert budget.attempts == 1 + 3 * 2 + FAILURES_AFTER_ANSWERS
