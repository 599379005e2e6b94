"""EventBridge schedule expressions (`rate(...)`, `cron(...)`, `at(...)`): when does a schedule fire next?

AWS cron has six fields (minutes hours day-of-month month day-of-week year), day-of-week 1-7 = SUN-SAT, and one of
day-of-month / day-of-week must be `?`. Supported: `*`, `?`, lists, ranges, steps, month and day names, `L` in
day-of-month. Not supported (refused clearly): `W`, `#`, and `L` in day-of-week.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
_DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


class UnsupportedExpression(ValueError):
    pass


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The set of allowed values, or None for 'any'."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for item in text.split(","):
        part, step = item, 1
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if "/" in text else start
        values.update(range(start, end + 1, step))
    if any(v < low or v > high for v in values):
        raise UnsupportedExpression(f"value out of range {low}-{high} in {text!r}")
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise UnsupportedExpression(f"unsupported cron token {text!r}")
    return int(text)


def _next_cron(fields: list[str], after: datetime) -> datetime | None:
    if len(fields) != 6:
        raise UnsupportedExpression("cron() takes six fields: minutes hours day-of-month month day-of-week year")
    if any(c in f for f in fields for c in "W#"):
        raise UnsupportedExpression("W and # are not supported in cron expressions locally")
    minutes = _field(fields[0], 0, 59)
    hours = _field(fields[1], 0, 23)
    last_day = fields[2] == "L"
    days = None if last_day else _field(fields[2], 1, 31)
    months = _field(fields[3], 1, 12, _MONTHS)
    weekdays = _field(fields[4], 1, 7, _DAYS)
    years = _field(fields[5], 1970, 2199)
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for _ in range(366 * 5):
        if (years is None or day.year in years) and (months is None or day.month in months):
            month_end = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
            dom_ok = day.day == month_end if last_day else (days is None or day.day in days)
            dow_ok = weekdays is None or ((day.isoweekday() % 7) + 1) in weekdays
            if dom_ok and dow_ok:
                for hour in sorted(hours) if hours is not None else range(24):
                    for minute in sorted(minutes) if minutes is not None else range(60):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
        day += timedelta(days=1)
    return None


def next_fire(expression: str, after: datetime, *, anchor: datetime, timezone: str = "UTC") -> datetime | None:
    """The first firing strictly after `after` (aware), or None if it never fires again.

    `anchor` is when the schedule came into being: `rate()` schedules fire every period counted from it.
    """
    expression = expression.strip()
    period = rate_seconds(expression)
    if period is not None:
        elapsed = max(0.0, (after - anchor).total_seconds())
        return anchor + timedelta(seconds=(int(elapsed // period) + 1) * period)
    zone = ZoneInfo(timezone)
    if expression.startswith("cron(") and expression.endswith(")"):
        found = _next_cron(expression[5:-1].split(), after.astimezone(zone).replace(tzinfo=None))
        return found.replace(tzinfo=zone).astimezone(UTC) if found else None
    if expression.startswith("at(") and expression.endswith(")"):
        when = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=zone).astimezone(UTC)
        return when if when > after else None
    raise UnsupportedExpression(f"unsupported schedule expression {expression!r}")


def rate_seconds(expression: str) -> int | None:
    """`rate(5 minutes)` -> 300; None when the expression is not a rate."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT[match.group(2).rstrip("s")]
