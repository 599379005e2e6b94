from datetime import UTC, datetime, timedelta

import pytest
from billmig_local.schedule_expressions import UnsupportedExpression, next_fire
from hypothesis import given
from hypothesis import strategies as st

ANCHOR = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 6 * * ? *)", datetime(2026, 11, 24, 9, 30, tzinfo=UTC), datetime(2026, 11, 25, 6, 0, tzinfo=UTC)),
        ("cron(0 6 * * ? *)", datetime(2026, 11, 25, 5, 59, tzinfo=UTC), datetime(2026, 11, 25, 6, 0, tzinfo=UTC)),
        (
            "cron(0 12 ? * MON-FRI *)",
            datetime(2026, 11, 27, 13, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        ),
        ("cron(0 0 1 * ? *)", datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("cron(0 0 L * ? *)", datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        ("cron(15 10 ? * 6L 2027)", None, None),
        ("cron(*/15 * * * ? *)", datetime(2026, 11, 24, 9, 31, tzinfo=UTC), datetime(2026, 11, 24, 9, 45, tzinfo=UTC)),
        ("rate(1 day)", datetime(2026, 11, 24, 9, 30, tzinfo=UTC), datetime(2026, 11, 25, 9, 30, tzinfo=UTC)),
        ("rate(15 minutes)", datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),
        ("at(2026-12-01T00:00:00)", datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("at(2026-12-01T00:00:00)", datetime(2026, 12, 2, tzinfo=UTC), None),
    ],
)
def test_next_fire(expression: str, after: datetime | None, expected: datetime | None) -> None:
    if after is None:
        with pytest.raises(UnsupportedExpression):
            next_fire(expression, ANCHOR, anchor=ANCHOR)
        return
    assert next_fire(expression, after, anchor=ANCHOR) == expected


def test_cron_in_a_timezone() -> None:
    fired = next_fire(
        "cron(0 9 * * ? *)", datetime(2026, 11, 24, 12, 0, tzinfo=UTC), anchor=ANCHOR, timezone="America/New_York"
    )
    assert fired == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)).map(lambda d: d.replace(tzinfo=UTC))
)
def test_firings_are_strictly_later_and_on_the_requested_minute(after: datetime) -> None:
    fired = next_fire("cron(30 */4 ? * TUE,THU *)", after, anchor=ANCHOR)
    assert fired is not None
    assert after < fired <= after + timedelta(days=7)
    assert (fired.minute, fired.hour % 4, fired.isoweekday()) in {(30, 0, 2), (30, 0, 4)}
