"""The Stigg pacer on the template's progress table (moto over HTTP), raced by many threads at once.

The clock is a stand-in that moves when a runner waits, so no test sleeps; the slots handed out are what is checked.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from billmig.adapters.dynamodb_pacer import MARGIN_SECONDS, WINDOW_SECONDS, DynamoDBPacer
from billmig.stigg.errors import StiggPaced
from billmig.stigg.pacing import Limit
from billmig_local.stack import LocalStack

START = 2_000_000_000.0


class SteppingClock:
    """World time that only moves when someone waits for it; every wait is remembered as a granted slot."""

    def __init__(self) -> None:
        self._now = START
        self._lock = threading.Lock()
        self.slots: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep_until(self, instant: float) -> None:
        with self._lock:
            self.slots.append(instant)
            self._now = max(self._now, instant)


@pytest.fixture()
def pacer_parts(local_stack: LocalStack, dynamodb: Any) -> tuple[SteppingClock, DynamoDBPacer]:
    clock = SteppingClock()
    return clock, DynamoDBPacer(local_stack.outputs["ProgressTableName"], client=dynamodb, clock=clock, max_wait=600)


def _limit(per_minute: int) -> Limit:
    return Limit(f"test-{uuid.uuid4().hex[:8]}", per_minute)


def _within(slots: list[float], per_minute: int) -> bool:
    """No more than `per_minute` slots in any minute (Stigg's sliding window)."""
    ordered = sorted(slots)
    return all(later - earlier >= WINDOW_SECONDS for earlier, later in zip(ordered, ordered[per_minute:], strict=False))


def test_racing_threads_never_get_more_slots_than_a_minute_allows(
    pacer_parts: tuple[SteppingClock, DynamoDBPacer],
) -> None:
    clock, pacer = pacer_parts
    limit = _limit(5)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def runner() -> None:
        barrier.wait()
        try:
            for _ in range(3):
                pacer.acquire([limit])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(clock.slots) == 24
    assert _within(clock.slots, 5)
    # a burst of the whole allowance at once, then the next five a window (plus margin) later
    ordered = sorted(clock.slots)
    assert ordered[:5] == [START] * 5
    assert ordered[5] == pytest.approx(START + WINDOW_SECONDS + MARGIN_SECONDS, abs=0.01)


def test_two_limits_at_once_hold_both(pacer_parts: tuple[SteppingClock, DynamoDBPacer]) -> None:
    """Provisioning spends the global limit and the customer's own in one transaction."""
    clock, pacer = pacer_parts
    everyone, one_customer, other_customer = _limit(3), _limit(2), _limit(2)
    for customer in (one_customer, one_customer, other_customer, one_customer):
        pacer.acquire([everyone, customer])
    first_three = sorted(clock.slots)[:3]
    assert first_three == [START] * 3
    assert clock.slots[3] >= START + WINDOW_SECONDS  # the fourth waits for both a global and a per-customer slot


def test_a_429_cools_the_limit_down_for_everyone_and_longer_each_time(
    pacer_parts: tuple[SteppingClock, DynamoDBPacer],
) -> None:
    clock, pacer = pacer_parts
    limit = _limit(100)
    pacer.acquire([limit])
    pacer.throttled([limit])
    pacer.acquire([limit])
    first_pause = clock.slots[-1] - START
    pacer.throttled([limit])
    before = clock.now()
    pacer.acquire([limit])
    assert first_pause == pytest.approx(1.0, abs=0.01)
    assert clock.slots[-1] - before == pytest.approx(2.0, abs=0.01)


def test_a_slot_further_than_a_task_may_wait_is_not_taken(local_stack: LocalStack, dynamodb: Any) -> None:
    clock = SteppingClock()
    pacer = DynamoDBPacer(local_stack.outputs["ProgressTableName"], client=dynamodb, clock=clock, max_wait=10)
    limit = _limit(1)
    pacer.acquire([limit])
    with pytest.raises(StiggPaced):
        pacer.acquire([limit])
    assert clock.now() == START + 10  # it waited what it may, then handed the wait to Step Functions
