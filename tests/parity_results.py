"""A parity run's results as the parity checks record them, one customer per fault class of issue 15 plus clean ones,
for the report's tests (the checks themselves are tested against the emulators). Import with
`from parity_results import ...`."""

from __future__ import annotations

from datetime import UTC, datetime

from billmig.parity.report import UncheckedCustomer
from billmig.parity.verdicts import Cause, Difference, LineParity, PeriodParity

RUN = "parity-2026-03-02"
BATCH = "wave-1"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
CHECKED_AT = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HOSTILE_NAME = '<script>alert("name")</script> & Sons <img src=x onerror=alert(1)>'


def _line(key: str, quantity: float, cents: int, *, metronome: tuple[float, int] | None = None) -> LineParity:
    m_quantity, m_cents = metronome if metronome is not None else (quantity, cents)
    return LineParity(
        key=key,
        stripe_quantity=quantity,
        metronome_quantity=m_quantity,
        stripe_cents=cents,
        metronome_cents=m_cents,
        within_tolerance=abs(m_cents - cents) <= 1,
    )


def period(
    customer: str,
    lines: list[LineParity],
    differences: list[Difference] | None = None,
    *,
    start: datetime = FEB,
    end: datetime = MAR,
    closed: bool = True,
    totals: tuple[int | None, int | None] | None = None,
) -> PeriodParity:
    stripe_total, metronome_total = totals or (
        sum(line.stripe_cents or 0 for line in lines),
        sum(line.metronome_cents or 0 for line in lines),
    )
    differences = differences or []
    within = all(line.within_tolerance for line in lines) and not any(
        d.cause is not Cause.ROUNDING for d in differences
    )
    return PeriodParity(
        stripe_customer_id=customer,
        batch_id=BATCH,
        period_start=start,
        period_end=end,
        closed=closed,
        parity_run_id=RUN,
        checked_at=CHECKED_AT,
        stripe_total_cents=stripe_total,
        metronome_total_cents=metronome_total,
        within_tolerance=within,
        lines=lines,
        differences=differences,
    )


def run_results() -> list[PeriodParity]:
    """Twelve customers: five clean (one with a rounding cent, one with an excluded licensed fee), seven faulty."""
    results: list[PeriodParity] = []
    for n in range(1, 4):
        results.append(
            period(f"cus_clean{n}", [_line("api_calls", 1000 * n, 2000 * n), _line("storage_gb", 12.5, 375)])
        )
    results.append(
        period(
            "cus_rounding",
            [_line("api_calls", 3333, 6666, metronome=(3333, 6667))],
            [Difference(cause=Cause.ROUNDING, line_key="api_calls", cents=1,
                        evidence="3,333 x $0.02 = $66.66 in Stripe; Metronome rounds the line half-up to $66.67",
                        suggested_fix="none: within the 1-cent line tolerance")],
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_licensed",
            [
                _line("api_calls", 500, 1000),
                LineParity(key="seat_fee", stripe_quantity=5, stripe_cents=5000, within_tolerance=True,
                           excluded_reason="licensed fee: excluded by config (not_migrated)"),
            ],
            totals=(6000, 1000),
        ).model_copy(update={"excluded_cents": 5000, "stripe_invoice_id": "in_lic", "metronome_invoice_id": "inv_1",
                             "stripe_subtotal_cents": 6000, "metronome_subtotal_cents": 1000,
                             "stripe_credits_cents": -250, "metronome_credits_cents": -250})
    )  # fmt: skip
    results.append(
        period(
            "cus_region",
            [
                _line("api_calls|region=us-east", 4000, 8000),
                _line("api_calls|region=eu-central", 2500, 5000, metronome=(2500, 0)),
            ],
            [Difference(cause=Cause.PRICING_GROUP_MISMATCH, line_key="api_calls|region=eu-central", cents=-5000,
                        evidence="2,500 events with region=eu-central; the rate card prices region in "
                                 "{us-east, us-west}: no rate for eu-central",
                        suggested_fix="add a rate for region=eu-central to the rate card, or map the value")],
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_case",
            [_line("api_calls|region=US-East", 1200, 2400, metronome=(1200, 0))],
            [Difference(cause=Cause.PRICING_GROUP_MISMATCH, line_key="api_calls|region=US-East", cents=-2400,
                        evidence="1,200 events with region=US-East; the rate card has us-east (values are "
                                 "case-sensitive)",
                        suggested_fix="send region in lower case, or add US-East to the rate card")],
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_dropped",
            [_line("api_calls", 801, 1602, metronome=(800, 1600))],
            [Difference(cause=Cause.MISSING_USAGE, line_key="api_calls", cents=-2,
                        evidence="1 event in Stripe's meter summary not in Metronome (transaction id "
                                 "evt-cus_dropped-0412), outside the late-event window",
                        suggested_fix="billmig usage replay --customer cus_dropped --from 2026-02-01")],
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_grants",
            [_line("api_calls", 20_000, 40_000)],
            [Difference(cause=Cause.CREDIT_ORDER, cents=12_500,
                        evidence="two grants at priority 50: Stripe drew the paid grant first, Metronome the "
                                 "$0-cost-basis credit (its tie-break)",
                        suggested_fix="give the grants distinct priorities before cutover")],
            totals=(15_000, 27_500),
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_anchor",
            [_line("api_calls", 3000, 6000, metronome=(2100, 4200))],
            [Difference(cause=Cause.PERIOD_MISALIGNMENT, line_key="api_calls", cents=-1800,
                        evidence="Stripe's period 2026-01-15..2026-02-15; Metronome's statement 2026-02-01..03-01",
                        suggested_fix="compare the anchored periods: set the statement day to the 15th")],
            start=datetime(2026, 1, 15, tzinfo=UTC),
            end=datetime(2026, 2, 15, tzinfo=UTC),
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_nocontract",
            [_line("api_calls", 900, 1800, metronome=(0, 0))],
            [Difference(cause=Cause.NO_CONTRACT, cents=-1800,
                        evidence="an active Stripe subscriber with no Metronome contract",
                        suggested_fix="billmig metronome start for this customer")],
            totals=(1800, None),
        )
    )  # fmt: skip
    results.append(
        period(
            "cus_hostile",
            [_line("api_calls|plan=<b>pro</b>", 10, 20, metronome=(10, 120))],
            [Difference(cause=Cause.UNMAPPED_PRICE, line_key="api_calls|plan=<b>pro</b>", cents=100,
                        evidence='price "<script>x()</script>" has no mapping', suggested_fix="=HYPERLINK(\"x\")")],
            closed=False,
            start=MAR,
            end=datetime(2026, 4, 1, tzinfo=UTC),
        )
    )  # fmt: skip
    return results


def unchecked() -> list[UncheckedCustomer]:
    return [
        UncheckedCustomer(stripe_customer_id="cus_broken", outcome="failed", reason="VendorUnavailable: 503 x 4"),
        UncheckedCustomer(stripe_customer_id="cus_new", outcome="skipped", reason="not in the parallel run yet"),
    ]


NAMES = {"cus_hostile": HOSTILE_NAME, "cus_clean1": "Acme & Co"}
FAULTY = {"cus_region", "cus_case", "cus_dropped", "cus_grants", "cus_anchor", "cus_nocontract", "cus_hostile"}
