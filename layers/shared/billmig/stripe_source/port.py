"""The port to Stripe both migration paths use: reads for planning and parity, and the cancel a cutover makes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from billmig.stripe_source.views import StripeCreditGrant, StripeCustomer, StripeInvoice, StripeSubscription


class StripeSource(Protocol):
    def customers(self, statuses: Iterable[str]) -> Iterator[StripeCustomer]:
        """Every customer with its subscriptions in these statuses (customers without one are included)."""
        ...

    def customer(self, customer_id: str) -> StripeCustomer: ...

    def customers_with_subscription_in(self, statuses: Iterable[str]) -> list[str]:
        """Ids of the customers with a subscription in one of these statuses (Stripe's Search API)."""
        ...

    def price_keys(self) -> set[str]:
        """The id and lookup key of every price, to check a mapping names prices that exist."""
        ...

    def subscription(self, subscription_id: str) -> StripeSubscription: ...

    def subscription_status(self, subscription_id: str) -> str: ...

    def cancel_subscription(self, subscription_id: str, *, invoice_now: bool, prorate: bool) -> str:
        """Cancel at once; returns the new status. A DELETE takes no idempotency key: read the status first."""
        ...

    def cancel_at_period_end(self, subscription_id: str, idempotency_key: str) -> None:
        """End the subscription after its current period's final cycle invoice (`cancel_at_period_end: true`)."""
        ...

    def create_schedule(self, subscription_id: str, idempotency_key: str) -> str:
        """A subscription schedule `from_subscription` (one phase: the current period); returns its id."""
        ...

    def end_schedule_with_cancel(self, schedule_id: str, idempotency_key: str) -> None:
        """`end_behavior: cancel`: the subscription ends when the schedule's last phase (its period) ends."""
        ...

    def credit_grants(self, customer_id: str) -> list[StripeCreditGrant]:
        """Every grant of the customer, each with its own remaining balance (`credit_balance_summary` per grant)."""
        ...

    def metered_usage(self, meter_id: str, customer_id: str, start: int, end: int) -> float:
        """The meter's event summaries for the customer over [start, end), summed."""
        ...

    def invoices(self, subscription_id: str) -> list[StripeInvoice]:
        """The subscription's invoices, newest first, each with its period and lines."""
        ...


WRITE_METHODS = ("cancel_subscription", "cancel_at_period_end", "create_schedule", "end_schedule_with_cancel")
"""Every `StripeSource` method that writes: the crash points the resume tests enumerate."""
