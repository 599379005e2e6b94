"""Reading a Stripe account's customers, subscriptions and current-period usage for `--from-stripe`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import stripe

from billmig.adapters.stripe_subscriptions import typed_stripe_call
from billmig.stigg.stripe_mapping import StripeCustomerView, StripeItem, StripeSubscriptionView


class StripeAccountBook:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def customers(self, statuses: Iterable[str]) -> Iterator[StripeCustomerView]:
        wanted = set(statuses)
        pages = typed_stripe_call("list customers", lambda: self._client.v1.customers.list(params={"limit": 100}))
        for customer in pages.auto_paging_iter():
            subscriptions = self._subscriptions_of(customer.id)
            views = [self._subscription(s) for s in subscriptions.auto_paging_iter() if s.status in wanted]
            settings = getattr(customer, "invoice_settings", None)
            method = getattr(settings, "default_payment_method", None) if settings is not None else None
            yield StripeCustomerView(
                id=customer.id,
                email=customer.email,
                name=customer.name,
                metadata={str(k): str(v) for k, v in (customer.to_dict().get("metadata") or {}).items()},
                default_payment_method=method if isinstance(method, str) else getattr(method, "id", None),
                subscriptions=tuple(views),
            )

    def _subscriptions_of(self, customer_id: str) -> Any:
        return typed_stripe_call(
            f"list subscriptions of {customer_id}",
            lambda: self._client.v1.subscriptions.list(
                params={"customer": customer_id, "status": "all", "limit": 100, "expand": ["data.items.data.price"]}
            ),
        )

    @staticmethod
    def _subscription(subscription: Any) -> StripeSubscriptionView:
        items = []
        for item in subscription["items"].data:
            price = item.price
            recurring = price.recurring
            items.append(
                StripeItem(
                    price_id=price.id,
                    lookup_key=price.lookup_key,
                    quantity=int(item.quantity or 1) if recurring is None or recurring.meter is None else 0,
                    interval=recurring.interval if recurring is not None else None,
                    meter_id=recurring.meter if recurring is not None else None,
                    period_start=int(item.current_period_start),
                    period_end=int(item.current_period_end),
                )
            )
        return StripeSubscriptionView(
            id=subscription.id, status=subscription.status, start_date=int(subscription.start_date), items=tuple(items)
        )

    def metered_usage(self, meter_id: str, customer_id: str, start: int, end: int) -> float:
        """Sum of the meter's event summaries for the customer over [start, end), on whole minutes as Stripe wants."""
        start, end = start - start % 60, end + (-end) % 60
        if end <= start:
            return 0.0
        summaries = typed_stripe_call(
            f"event summaries of {meter_id}",
            lambda: self._client.v1.billing.meters.event_summaries.list(
                meter_id, params={"customer": customer_id, "start_time": start, "end_time": end, "limit": 100}
            ),
        )
        return float(sum(s.aggregated_value for s in summaries.auto_paging_iter()))
