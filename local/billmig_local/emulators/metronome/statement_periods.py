"""Usage statement periods of a contract: `frequency` steps from an anchor (`day`), clipped to the contract.

FIRST_OF_MONTH anchors on calendar months (weeks for WEEKLY anchor on the contract start), CONTRACT_START on the
contract's `starting_at`, CUSTOM_DATE on `billing_anchor_date`. The first and last periods may be partial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_MONTHS = {"MONTHLY": 1, "QUARTERLY": 3, "ANNUAL": 12}


@dataclass(frozen=True)
class Period:
    start: float
    end: float


def _add_months(moment: datetime, months: int, anchor_day: int) -> datetime:
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    # clamp to the month's last day (an anchor on the 31st bills on the 30th in April)
    next_month = datetime(year + (month // 12), month % 12 + 1, 1, tzinfo=UTC)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(anchor_day, last_day))


def billing_anchor(schedule: dict[str, Any], contract_start: float) -> float:
    day = (schedule.get("day") or "FIRST_OF_MONTH").upper()
    start = datetime.fromtimestamp(contract_start, UTC)
    if day == "CUSTOM_DATE" and schedule.get("_billing_anchor_ts") is not None:
        return float(schedule["_billing_anchor_ts"])
    if day == "FIRST_OF_MONTH" and schedule.get("frequency", "MONTHLY").upper() != "WEEKLY":
        return start.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return contract_start


def boundaries_after(anchor: float, frequency: str, until: float, not_before: float) -> list[float]:
    """Every period boundary in (not_before, until], stepping from `anchor` in both directions as needed."""
    frequency = frequency.upper()
    anchor_dt = datetime.fromtimestamp(anchor, UTC)
    result: list[float] = []
    step = 0
    # walk back so the first boundary at or before `not_before` is found
    while True:
        moment = _step(anchor_dt, frequency, step)
        if moment.timestamp() <= not_before:
            break
        step -= 1
    while True:
        step += 1
        moment_ts = _step(anchor_dt, frequency, step).timestamp()
        if moment_ts > until:
            break
        if moment_ts > not_before:
            result.append(moment_ts)
    return result


def _step(anchor: datetime, frequency: str, n: int) -> datetime:
    if frequency == "WEEKLY":
        return anchor + timedelta(weeks=n)
    return _add_months(anchor, _MONTHS.get(frequency, 1) * n, anchor.day)


def statement_periods(
    schedule: dict[str, Any],
    contract_start: float,
    contract_end: float | None,
    generation_start: float | None,
    now: float,
) -> list[Period]:
    """The periods that have an invoice by `now`: those that have begun, from `invoice_generation_starting_at`."""
    first = max(contract_start, generation_start or contract_start)
    last = min(contract_end, now + 1) if contract_end is not None else now + 1
    if first >= last:
        return []
    frequency = schedule.get("frequency", "MONTHLY")
    anchor = billing_anchor(schedule, contract_start)
    horizon = contract_end if contract_end is not None else now + 400 * 86400
    cuts = boundaries_after(anchor, frequency, min(horizon, now + 400 * 86400), first)
    periods: list[Period] = []
    start = first
    for cut in [*cuts, horizon]:
        end = min(cut, horizon)
        if end <= start:
            continue
        if start > now:
            break
        periods.append(Period(start, end))
        start = end
        if contract_end is not None and end >= contract_end:
            break
    return periods
