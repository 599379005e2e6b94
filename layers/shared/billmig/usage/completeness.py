"""Dual-write completeness: per customer, meter and month, did Stripe and Metronome get the same usage?

Only the dual-write window is compared: from the customer's parallel-run start to its cutover instant, and never
past the late-event window (events may still be on their way), each end on a whole hour (the finest grain both
vendors answer in). Stripe's side is the meter's event summary; Metronome's is `usage/groups` for the rule's billable
metric and pricing-group values. A shortfall in Metronome is reported `missing`, a surplus `extra`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from billmig.usage.mapping import MeterRule, UsageRouterConfig
from billmig.usage.routing import MIGRATING_PHASES, CustomerRoute

HOUR = timedelta(hours=1)
Status = Literal["match", "missing", "extra"]


class UsageTotals(Protocol):
    def stripe_total(self, stripe_customer_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal: ...

    def metronome_total(self, internal_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal: ...


@dataclass(frozen=True)
class CompletenessRow:
    internal_id: str
    stripe_customer_id: str
    meter: str  # the Stripe meter's event name: one rule
    period: str  # YYYY-MM
    window_start: str
    window_end: str
    stripe: str
    metronome: str
    difference: str  # Metronome minus Stripe
    status: Status


@dataclass(frozen=True)
class CompletenessReport:
    run_id: str
    checked_at: str
    late_event_window_hours: int
    rows: list[CompletenessRow]

    @property
    def problems(self) -> list[CompletenessRow]:
        return [row for row in self.rows if row.status != "match"]

    def totals(self) -> dict[str, int]:
        counts = {"match": 0, "missing": 0, "extra": 0}
        for row in self.rows:
            counts[row.status] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checked_at": self.checked_at,
            "late_event_window_hours": self.late_event_window_hours,
            "totals": self.totals(),
            "rows": [asdict(row) for row in self.rows],
        }


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """`2026-11` -> [2026-11-01T00:00Z, 2026-12-01T00:00Z); a bad value raises ValueError naming it."""
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"--period {period!r}: expected YYYY-MM") from exc
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(value: datetime) -> datetime:
    floored = _floor_hour(value)
    return floored if floored == value else floored + HOUR


def dual_write_window(
    route: CustomerRoute, period: tuple[datetime, datetime], now: datetime, late: timedelta
) -> tuple[datetime, datetime] | None:
    start = period[0] if route.dual_write_from is None else max(period[0], route.dual_write_from)
    end = min(period[1], now - late, *([route.cutover_at] if route.cutover_at is not None else []))
    start, end = _ceil_hour(start), _floor_hour(end)
    return (start, end) if end > start else None


def periods_between(start: datetime, end: datetime) -> list[str]:
    found, cursor = [], start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cursor < end:
        found.append(f"{cursor:%Y-%m}")
        cursor = month_bounds(f"{cursor:%Y-%m}")[1]
    return found


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != 0 else "0"


def rows_for_period(
    route: CustomerRoute,
    config: UsageRouterConfig,
    totals: UsageTotals,
    period: tuple[datetime, datetime],
    label: str,
    *,
    now: datetime,
) -> list[CompletenessRow]:
    """One customer's rows (one per rule) over the dual-write part of `period`; none when nothing of it is due yet."""
    if route.stripe_customer_id is None:
        return []
    window = dual_write_window(route, period, now, timedelta(hours=config.late_event_window_hours))
    if window is None:
        return []
    rows = []
    for rule in config.rules:
        stripe = totals.stripe_total(route.stripe_customer_id, rule, *window)
        metronome = totals.metronome_total(route.internal_id, rule, *window)
        status: Status = "match" if stripe == metronome else "missing" if metronome < stripe else "extra"
        rows.append(
            CompletenessRow(
                internal_id=route.internal_id,
                stripe_customer_id=route.stripe_customer_id,
                meter=rule.stripe_event_name,
                period=label,
                window_start=window[0].isoformat().replace("+00:00", "Z"),
                window_end=window[1].isoformat().replace("+00:00", "Z"),
                stripe=_text(stripe),
                metronome=_text(metronome),
                difference=_text(metronome - stripe),
                status=status,
            )
        )
    return rows


def check_completeness(
    run_id: str,
    routes: list[CustomerRoute],
    config: UsageRouterConfig,
    totals: UsageTotals,
    *,
    now: datetime,
    period: str | None = None,
) -> CompletenessReport:
    late = timedelta(hours=config.late_event_window_hours)
    rows: list[CompletenessRow] = []
    for route in sorted(routes, key=lambda r: r.internal_id):
        if route.phase not in MIGRATING_PHASES or route.stripe_customer_id is None:
            continue
        first = route.dual_write_from or now - late
        for month in [period] if period else periods_between(first, now):
            rows.extend(rows_for_period(route, config, totals, month_bounds(month), month, now=now))
    return CompletenessReport(run_id, now.isoformat().replace("+00:00", "Z"), config.late_event_window_hours, rows)
