"""Billing period boundaries: whole intervals from the billing cycle anchor, month ends clamped as Stripe does
(an anchor on the 31st bills on Feb 28/29, then on Mar 31)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

_SECONDS = {"day": 86400, "week": 7 * 86400}


def boundary(anchor: int, interval: str, count: int, n: int) -> int:
    """The n-th period boundary after (n > 0) or before (n < 0) the anchor."""
    if interval in _SECONDS:
        return anchor + n * count * _SECONDS[interval]
    months = n * count * (12 if interval == "year" else 1)
    at = datetime.fromtimestamp(anchor, UTC)
    year, month0 = divmod(at.month - 1 + months, 12)
    year += at.year
    day = min(at.day, calendar.monthrange(year, month0 + 1)[1])
    return int(at.replace(year=year, month=month0 + 1, day=day).timestamp())


def period_containing(anchor: int, interval: str, count: int, instant: int) -> tuple[int, int]:
    """`[start, end)` of the anchor-aligned period that holds `instant`."""
    n = 0
    if instant >= anchor:
        while boundary(anchor, interval, count, n + 1) <= instant:
            n += 1
    else:
        while boundary(anchor, interval, count, n) > instant:
            n -= 1
    return boundary(anchor, interval, count, n), boundary(anchor, interval, count, n + 1)
