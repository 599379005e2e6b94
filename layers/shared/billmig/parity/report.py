"""A parity run's report: what was checked, what differed and why, largest differences first.

Built from the run's period results (the ledger's records) and the customers the run could not check, so one model
feeds the three renderings: the JSON document, the CSV (one row per customer, period and difference, for
spreadsheets) and the HTML page (`billmig.parity.report_page`). Money stays in integer cents throughout.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billmig.parity.verdicts import Cause, Difference, GateVerdict, LineParity, PeriodParity

COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed with errors"

SIZE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("$0.00", 0, 1),
    ("1-99¢", 1, 100),
    ("$1-$9.99", 100, 1_000),
    ("$10-$99.99", 1_000, 10_000),
    ("$100-$999.99", 10_000, 100_000),
    ("$1,000 and over", 100_000, None),
)
"""The chart's bins of a difference's size (absolute cents, low inclusive, high exclusive): a decade each, since
rounding differences are cents and a missing price is the whole line."""

CSV_COLUMNS = (
    "parity_run_id",
    "stripe_customer_id",
    "customer_name",
    "batch_id",
    "period_start",
    "period_end",
    "closed",
    "line_key",
    "cause",
    "difference_cents",
    "stripe_quantity",
    "metronome_quantity",
    "stripe_cents",
    "metronome_cents",
    "evidence",
    "suggested_fix",
)


class UncheckedCustomer(BaseModel):
    """A customer the run meant to check and could not: its check failed, or it was skipped (and why)."""

    stripe_customer_id: str
    outcome: Literal["failed", "skipped"]
    reason: str


class CauseTotal(BaseModel):
    differences: int = 0
    customers: int = 0
    cents: int = 0


class ReportSummary(BaseModel):
    customers_checked: int
    customers_within_tolerance: int
    customers_held_back: int
    customers_failed: int
    customers_skipped: int
    periods_checked: int
    lines_excluded: int
    differences: int
    cents_of_difference: int = Field(description="the sum of every difference's absolute cents")
    by_cause: dict[Cause, CauseTotal]


class DifferenceRow(BaseModel):
    """One difference with the line it is about (both sides' quantity and cents; the invoice totals for a difference
    about the whole invoice): a CSV row, a table row."""

    parity_run_id: str
    stripe_customer_id: str
    customer_name: str | None
    batch_id: str
    period_start: datetime
    period_end: datetime
    closed: bool
    line_key: str | None
    cause: Cause
    difference_cents: int
    stripe_quantity: float | None
    metronome_quantity: float | None
    stripe_cents: int | None
    metronome_cents: int | None
    evidence: str
    suggested_fix: str


class CustomerReport(BaseModel):
    stripe_customer_id: str
    customer_name: str | None = None
    passed: bool
    held_back: bool
    gate_reason: str | None = None
    difference_cents: int
    periods: list[PeriodParity]


class SizeBucket(BaseModel):
    label: str
    low_cents: int
    high_cents: int | None
    by_cause: dict[Cause, int]

    @property
    def count(self) -> int:
        return sum(self.by_cause.values())


class ParityReport(BaseModel):
    parity_run_id: str
    generated_at: datetime
    status: str
    status_detail: str
    summary: ReportSummary
    differences: list[DifferenceRow]
    distribution: list[SizeBucket]
    customers: list[CustomerReport]
    unchecked: list[UncheckedCustomer]


def _line(period: PeriodParity, key: str | None) -> LineParity | None:
    return next((line for line in period.lines if line.key == key), None) if key is not None else None


def _row(period: PeriodParity, difference: Difference, name: str | None) -> DifferenceRow:
    line = _line(period, difference.line_key)
    return DifferenceRow(
        parity_run_id=period.parity_run_id,
        stripe_customer_id=period.stripe_customer_id,
        customer_name=name,
        batch_id=period.batch_id,
        period_start=period.period_start,
        period_end=period.period_end,
        closed=period.closed,
        line_key=difference.line_key,
        cause=difference.cause,
        difference_cents=difference.cents,
        stripe_quantity=line.stripe_quantity if line else None,
        metronome_quantity=line.metronome_quantity if line else None,
        stripe_cents=line.stripe_cents if line else period.stripe_total_cents,
        metronome_cents=line.metronome_cents if line else period.metronome_total_cents,
        evidence=difference.evidence,
        suggested_fix=difference.suggested_fix,
    )


def _bucket_of(cents: int) -> int:
    size = abs(cents)
    return next(i for i, (_, low, high) in enumerate(SIZE_BUCKETS) if size >= low and (high is None or size < high))


def _distribution(rows: Iterable[DifferenceRow]) -> list[SizeBucket]:
    buckets = [
        SizeBucket(label=label, low_cents=low, high_cents=high, by_cause={}) for label, low, high in SIZE_BUCKETS
    ]
    for row in rows:
        counts = buckets[_bucket_of(row.difference_cents)].by_cause
        counts[row.cause] = counts.get(row.cause, 0) + 1
    return buckets


def _status(unchecked: list[UncheckedCustomer]) -> tuple[str, str]:
    failed = sum(u.outcome == "failed" for u in unchecked)
    skipped = len(unchecked) - failed
    if not unchecked:
        return COMPLETED, COMPLETED
    return COMPLETED_WITH_ERRORS, f"{COMPLETED_WITH_ERRORS}: {failed} failed, {skipped} skipped"


def build_report(
    parity_run_id: str,
    results: Iterable[PeriodParity],
    *,
    generated_at: datetime,
    unchecked: Iterable[UncheckedCustomer] = (),
    verdicts: Mapping[str, GateVerdict] | None = None,
    names: Mapping[str, str] | None = None,
) -> ParityReport:
    """`verdicts` are the cutover gate's, per customer (a customer without one is held back unless it passed);
    `names` the customers' display names, when known (user input: the page escapes them)."""
    verdicts = verdicts or {}
    names = names or {}
    by_customer: dict[str, list[PeriodParity]] = {}
    for result in results:
        by_customer.setdefault(result.stripe_customer_id, []).append(result)
    customers: list[CustomerReport] = []
    rows: list[DifferenceRow] = []
    by_cause: dict[Cause, CauseTotal] = {}
    for customer_id, periods in by_customer.items():
        periods.sort(key=lambda p: p.period_start)
        name = names.get(customer_id)
        customer_rows = [_row(p, d, name) for p in periods for d in p.differences]
        rows.extend(customer_rows)
        for cause in {r.cause for r in customer_rows}:
            by_cause.setdefault(cause, CauseTotal()).customers += 1
        for row in customer_rows:
            total = by_cause[row.cause]
            total.differences += 1
            total.cents += abs(row.difference_cents)
        passed = all(p.passed for p in periods)
        verdict = verdicts.get(customer_id)
        customers.append(
            CustomerReport(
                stripe_customer_id=customer_id,
                customer_name=name,
                passed=passed,
                held_back=not verdict.released if verdict else not passed,
                gate_reason=verdict.reason if verdict else None,
                difference_cents=sum(abs(r.difference_cents) for r in customer_rows),
                periods=periods,
            )
        )
    rows.sort(key=lambda r: (-abs(r.difference_cents), r.stripe_customer_id, r.period_start, r.line_key or ""))
    customers.sort(key=lambda c: (-c.difference_cents, c.passed, c.stripe_customer_id))
    unchecked_list = sorted(unchecked, key=lambda u: (u.outcome, u.stripe_customer_id))
    status, detail = _status(unchecked_list)
    summary = ReportSummary(
        customers_checked=len(customers),
        customers_within_tolerance=sum(c.passed for c in customers),
        customers_held_back=sum(c.held_back for c in customers),
        customers_failed=sum(u.outcome == "failed" for u in unchecked_list),
        customers_skipped=sum(u.outcome == "skipped" for u in unchecked_list),
        periods_checked=sum(len(c.periods) for c in customers),
        lines_excluded=sum(1 for c in customers for p in c.periods for line in p.lines if line.excluded_reason),
        differences=len(rows),
        cents_of_difference=sum(abs(r.difference_cents) for r in rows),
        by_cause={cause: by_cause[cause] for cause in Cause if cause in by_cause},
    )
    return ParityReport(
        parity_run_id=parity_run_id,
        generated_at=generated_at,
        status=status,
        status_detail=detail,
        summary=summary,
        differences=rows,
        distribution=_distribution(rows),
        customers=customers,
        unchecked=unchecked_list,
    )


TEXT_COLUMNS = ("stripe_customer_id", "customer_name", "batch_id", "line_key", "evidence", "suggested_fix")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _inert(text: str | None) -> str | None:
    """A text cell a spreadsheet will not run as a formula (OWASP's CSV injection advice: a leading quote)."""
    return f"'{text}" if text and text.startswith(FORMULA_LEADS) else text


def report_as_csv(report: ParityReport) -> str:
    """One row per difference, largest first; cents as integers, instants in ISO 8601 UTC."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report.differences:
        cells = row.model_dump(mode="json")
        writer.writerow({**cells, **{column: _inert(cells[column]) for column in TEXT_COLUMNS}})
    return buffer.getvalue()
