"""Metronome usage queries: partly covered days hour by hour, whole days in one daily query, midnight bounds."""

from __future__ import annotations

from datetime import UTC, datetime

from billmig.adapters.usage_totals import _segments


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def test_a_month_from_mid_day_to_mid_day_is_two_hourly_days_around_the_whole_ones() -> None:
    assert _segments(at(2, 6), at(31, 23)) == [
        (at(2), at(3), "HOUR"),
        (at(3), at(31), "DAY"),
        (at(31), datetime(2027, 1, 1, tzinfo=UTC), "HOUR"),
    ]


def test_whole_days_are_one_daily_query() -> None:
    assert _segments(at(1), at(8)) == [(at(1), at(8), "DAY")]


def test_hours_within_one_day_or_across_one_midnight_stay_hourly() -> None:
    assert _segments(at(5, 3), at(5, 9)) == [(at(5), at(6), "HOUR")]
    assert _segments(at(5, 20), at(6, 4)) == [(at(5), at(7), "HOUR")]
