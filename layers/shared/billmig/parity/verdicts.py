"""What a parity check found for one customer and one billing period, and what the cutover gate decides from it.

These records are the contract between the parity checks (which write them), the reports (which read them) and the
cutover gate (which releases or holds back a customer): money in integer cents, periods as UTC instants.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Cause(StrEnum):
    """The root-cause classes a difference is explained by (issue 15)."""

    PRICING_GROUP_MISMATCH = "pricing_group_mismatch"
    MISSING_USAGE = "missing_usage"
    EXTRA_USAGE = "extra_usage"
    CREDIT_ORDER = "credit_order"
    BALANCE_DRIFT = "balance_drift"  # a grant's Metronome copy held more than Stripe's grant (found in use)
    PERIOD_MISALIGNMENT = "period_misalignment"
    ROUNDING = "rounding"
    UNEXPLAINED_TOTAL = "unexplained_total"  # every line agrees, the totals differ by more than rounding can
    UNMAPPED_PRICE = "unmapped_price"
    NO_CONTRACT = "no_contract"


COMPLETENESS_CAUSES = frozenset({Cause.MISSING_USAGE, Cause.EXTRA_USAGE})
"""Differences that mean the dual write is incomplete: the gate holds a customer back on these even when approved
totals look close, because the usage itself disagrees."""


class LineParity(BaseModel):
    """One invoice line on both sides: a Stripe metered price against a Metronome product and pricing-group values."""

    key: str
    stripe_quantity: float | None = None
    metronome_quantity: float | None = None
    stripe_cents: int | None = None
    metronome_cents: int | None = None
    within_tolerance: bool
    excluded_reason: str | None = None


class Difference(BaseModel):
    cause: Cause
    line_key: str | None = None
    cents: int = 0
    evidence: str
    suggested_fix: str


class PeriodParity(BaseModel):
    """The parity of one customer's billing period, as one parity run found it (the newest run's record wins)."""

    stripe_customer_id: str
    batch_id: str
    period_start: datetime
    period_end: datetime
    closed: bool
    parity_run_id: str
    checked_at: datetime
    stripe_total_cents: int | None = None
    metronome_total_cents: int | None = None
    within_tolerance: bool
    lines: list[LineParity] = Field(default_factory=list)
    differences: list[Difference] = Field(default_factory=list)
    # Added by the parity checks (defaults keep older records readable): the two invoices compared, their parts, and
    # the Stripe cents left out of the comparison (excluded or not-migrated lines, each listed with its reason).
    stripe_invoice_id: str | None = None  # None for the open period's preview
    stripe_threshold_invoice_ids: list[str] = Field(default_factory=list)  # summed with it (threshold billing)
    metronome_invoice_id: str | None = None
    stripe_subtotal_cents: int | None = None
    metronome_subtotal_cents: int | None = None
    stripe_credits_cents: int | None = None
    metronome_credits_cents: int | None = None
    excluded_cents: int = 0

    @property
    def difference_cents(self) -> int:
        """Metronome's total minus Stripe's compared total (0 when either side has none)."""
        if self.stripe_total_cents is None or self.metronome_total_cents is None:
            return sum(abs(d.cents) for d in self.differences)
        return self.metronome_total_cents - self.stripe_total_cents

    @property
    def completeness_holds(self) -> bool:
        return not any(d.cause in COMPLETENESS_CAUSES for d in self.differences)

    @property
    def passed(self) -> bool:
        return self.within_tolerance and self.completeness_holds


class Approval(BaseModel):
    """An operator's audited override of the gate: who, when, why."""

    stripe_customer_id: str
    approved_by: str
    approved_at: datetime
    reason: str


class GateVerdict(BaseModel):
    released: bool
    reason: str
    period_start: datetime | None = None
    approval: Approval | None = None
