"""Stripe's objects as the migration reads them: plain frozen values, money in integer minor units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class StripeItem:
    """One subscription item and its price: licensed (a quantity) or metered (a meter)."""

    price_id: str
    lookup_key: str | None
    quantity: int
    interval: str | None
    meter_id: str | None
    period_start: int
    period_end: int
    unit_amount: int | None = None
    currency: str = "usd"
    product_id: str | None = None


@dataclass(frozen=True)
class StripeSubscription:
    id: str
    status: str
    start_date: int
    items: tuple[StripeItem, ...]
    billing_cycle_anchor: int | None = None
    current_period_start: int | None = None
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    trial_end: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    billing_threshold: int | None = None  # `billing_thresholds.amount_gte`: Stripe invoices early at this amount
    schedule_id: str | None = None  # the subscription schedule that governs it, if any
    ended_at: int | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    email: str | None
    name: str | None
    metadata: dict[str, str]
    default_payment_method: str | None
    subscriptions: tuple[StripeSubscription, ...]


@dataclass(frozen=True)
class StripeCreditGrant:
    """A credit grant with what is left of it: `remaining` is Stripe's available balance for this grant alone."""

    id: str
    name: str | None
    category: Literal["paid", "promotional"]
    amount: int
    remaining: int
    currency: str
    priority: int
    effective_at: int | None
    expires_at: int | None
    voided_at: int | None
    price_type: str | None  # "metered" when the grant applies to every metered price
    price_ids: tuple[str, ...] = ()  # when it applies to these prices only


@dataclass(frozen=True)
class StripeInvoiceLine:
    price_id: str | None
    quantity: float
    amount: int
    period_start: int
    period_end: int


@dataclass(frozen=True)
class StripeInvoice:
    id: str
    subscription_id: str | None
    status: str
    period_start: int
    period_end: int
    subtotal: int
    total: int
    credits_applied: int
    currency: str
    lines: tuple[StripeInvoiceLine, ...]
    billing_reason: str | None = None
    # (credit balance transaction id, cents) per grant application; the ids are None on a preview (nothing recorded)
    credit_transactions: tuple[tuple[str | None, int], ...] = ()


@dataclass(frozen=True)
class StripePrice:
    id: str
    active: bool
    meter_id: str | None  # `recurring.meter`: the meter a metered price bills


@dataclass(frozen=True)
class StripeMeter:
    id: str
    event_name: str
    status: str  # active or inactive
