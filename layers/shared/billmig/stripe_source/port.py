"""The port to Stripe both migration paths use: reads for planning and parity, the cancel a cutover makes, and the
writes a rollback (a subscription resumed or recreated) and a batch's clean-up (prices archived, meters deactivated)
make. Every POST carries the caller's idempotency key (decisions.md (d))."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from billmig.stripe_source.views import (
    StripeCreditGrant,
    StripeCustomer,
    StripeInvoice,
    StripeMeter,
    StripePrice,
    StripeSubscription,
)


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

    # -- a rollback's writes
    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        """Remove a scheduled end: `cancel_at_period_end: false` (which clears `cancel_at` too)."""
        ...

    def release_schedule(self, schedule_id: str, idempotency_key: str) -> None:
        """Release a subscription schedule: the subscription stays, without the schedule's end."""
        ...

    def create_subscription(
        self,
        *,
        customer_id: str,
        items: tuple[tuple[str, int | None], ...],
        backdate_start_date: int,
        anchor: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str:
        """A new subscription on these (price, quantity or None when metered) items from `backdate_start_date`, its
        billing cycle on the same day and time of month as `anchor` (`billing_cycle_anchor_config`). Returns its id."""
        ...

    def subscriptions_of(self, customer_id: str) -> list[StripeSubscription]:
        """Every subscription of the customer, ended ones included, newest first."""
        ...

    # -- a clean-up's reads and writes
    def prices(self) -> list[StripePrice]: ...

    def meters(self) -> list[StripeMeter]: ...

    def live_subscriptions_with_price(self, price_id: str) -> list[str]:
        """Ids of the subscriptions not ended that bill this price."""
        ...

    def archive_price(self, price_id: str, idempotency_key: str) -> None: ...

    def deactivate_meter(self, meter_id: str, idempotency_key: str) -> None: ...


WRITE_METHODS = (
    "cancel_subscription",
    "cancel_at_period_end",
    "create_schedule",
    "end_schedule_with_cancel",
    "resume_subscription",
    "release_schedule",
    "create_subscription",
    "archive_price",
    "deactivate_meter",
)
"""Every `StripeSource` method that writes: the crash points the resume tests enumerate."""
