from pathlib import Path

import pytest
from billmig_local.clock import ClockMovedBackwards, WorldClock, parse_duration, parse_instant


def test_the_clock_only_moves_forward_and_tells_its_listeners(tmp_path: Path) -> None:
    clock = WorldClock(tmp_path / "clock.json")
    moves: list[tuple[float, float]] = []
    clock.subscribe(lambda old, new: moves.append((old, new)))
    before = clock.now()
    after = clock.advance(parse_duration("31d"))
    assert after - before >= 31 * 86400
    with pytest.raises(ClockMovedBackwards):
        clock.set(before)
    assert len(moves) == 1 and moves[0][1] - moves[0][0] >= 31 * 86400


def test_the_clock_survives_a_restart(tmp_path: Path) -> None:
    WorldClock(tmp_path / "clock.json").set(parse_instant("2031-01-01T00:00:00Z"))
    assert WorldClock(tmp_path / "clock.json").now() >= parse_instant("2031-01-01T00:00:00Z")


def test_wait_until_returns_when_the_clock_is_moved_past_the_instant() -> None:
    import threading

    clock = WorldClock()
    target = clock.now() + 10 * 86400
    released = threading.Event()
    waiter = threading.Thread(target=lambda: clock.wait_until(target) and released.set())
    waiter.start()
    clock.advance(11 * 86400)
    waiter.join(timeout=10)
    assert released.is_set()


def test_wait_for_ends_on_a_wake_once_its_condition_holds_and_otherwise_at_the_instant() -> None:
    """What a parked Wait relies on: no poll, so a stop must be announced with wake(), and a move still releases it."""
    import threading

    clock = WorldClock()
    stopped = threading.Event()
    outcomes: list[bool] = []
    # a recheck of a day: only wake() can end the first wait within the test
    first = threading.Thread(
        target=lambda: outcomes.append(clock.wait_for(stopped.is_set, clock.now() + 86400, recheck_seconds=86400))
    )
    first.start()
    stopped.set()
    clock.wake()
    first.join(timeout=10)
    assert outcomes == [False]

    second = threading.Thread(
        target=lambda: outcomes.append(clock.wait_for(lambda: False, clock.now() + 86400, recheck_seconds=86400))
    )
    second.start()
    clock.advance(2 * 86400)
    second.join(timeout=10)
    assert outcomes == [False, True]


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("36h", 129600), ("2w", 1209600)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="use e.g. 90s"):
        parse_duration("a month")
