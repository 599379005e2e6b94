"""The monthly usage-reset arithmetic: every instant falls in exactly one period anchored at the start date."""

from __future__ import annotations

from datetime import UTC, datetime

from billmig_local.emulators.stigg.datetimes import add_months, monthly_period
from hypothesis import given, settings
from hypothesis import strategies as st

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@settings(deadline=None)  # no wall-clock deadline: CI machines are shared
@given(anchor=instants, offset_days=st.floats(min_value=0, max_value=3000))
def test_period_contains_the_instant_and_starts_a_whole_number_of_months_after_the_anchor(anchor, offset_days) -> None:
    now = anchor.timestamp() + offset_days * 86_400
    start, end = monthly_period(anchor.timestamp(), now)
    assert start <= now < end
    months = next(m for m in range(0, 120) if add_months(anchor.timestamp(), m) == start)
    assert end == add_months(anchor.timestamp(), months + 1)


def test_month_end_anchor_is_clamped_not_drifting() -> None:
    jan_31 = datetime(2030, 1, 31, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(add_months(jan_31, 1), UTC).day == 28
    assert datetime.fromtimestamp(add_months(jan_31, 2), UTC).day == 31
