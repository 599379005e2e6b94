"""DateTime values on Stigg's wire (ISO 8601, UTC, milliseconds) and the monthly usage-reset arithmetic."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from .errors import BAD_USER_INPUT, StiggError


def parse(value: str | None, field: str) -> float | None:
    """A `DateTime` input -> Unix seconds; naive means UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise StiggError(BAD_USER_INPUT, f"{field}: not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def render(instant: float | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_months(instant: float, months: int) -> float:
    """The same day-of-month and time `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    moment = datetime.fromtimestamp(instant, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day).timestamp()


def monthly_period(anchor: float, now: float) -> tuple[float, float]:
    """The monthly period anchored at `anchor` (a subscription start) that contains `now`."""
    if now < anchor:
        return anchor, add_months(anchor, 1)
    moment, anchor_dt = datetime.fromtimestamp(now, UTC), datetime.fromtimestamp(anchor, UTC)
    months = (moment.year - anchor_dt.year) * 12 + moment.month - anchor_dt.month
    start = add_months(anchor, months)
    while start > now:
        months -= 1
        start = add_months(anchor, months)
    while add_months(anchor, months + 1) <= now:
        months += 1
        start = add_months(anchor, months)
    return start, add_months(anchor, months + 1)
