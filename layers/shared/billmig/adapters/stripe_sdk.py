"""`StripeSource` on the official SDK (`stripe` 16.x): the reads both paths make, and the cancel.

Errors are typed so Step Functions retries only 429s and outages; a DELETE carries no idempotency key in Stripe, so
callers read the status before cancelling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe

from billmig.errors import IdempotencyKeyReused, VendorRejected, VendorThrottled, VendorUnavailable
from billmig.stripe_source.views import (
    StripeCreditGrant,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripeItem,
    StripeMeter,
    StripePrice,
    StripeSubscription,
)

_T = TypeVar("_T")
PAGE = 100  # Stripe's largest list page


def typed_stripe_call(what: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except stripe.RateLimitError as exc:
        raise VendorThrottled(f"Stripe {what}: {exc.user_message or exc}") from exc
    except stripe.IdempotencyError as exc:
        raise IdempotencyKeyReused(f"Stripe {what}: {exc.user_message or exc}") from exc
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        raise VendorUnavailable(f"Stripe {what}: {exc.user_message or exc}") from exc
    except stripe.StripeError as exc:
        if exc.http_status is not None and exc.http_status >= 500:
            raise VendorUnavailable(f"Stripe {what}: {exc.user_message or exc}") from exc
        raise VendorRejected(f"Stripe {what}: {exc.user_message or exc}") from exc


def throttle_retrying_http_client() -> stripe.HTTPClient:
    """The SDK's default HTTP client, also retrying 429s: the SDK retries 409s and 5xx only, and Stripe's rate-limit
    guidance is to retry a 429 with exponential back-off, which the SDK's own back-off then gives (0.5 s doubling,
    jittered, at most 5 s). For read-heavy paths (parity), where a throttled read is always safe to repeat."""
    base: Any = type(stripe.new_default_http_client())

    class ThrottleRetrying(base):  # type: ignore[misc]
        def _should_retry(
            self, response: Any, api_connection_error: Any, num_retries: int, max_network_retries: int | None
        ) -> bool:
            if response is not None and response[1] == 429 and num_retries < (max_network_retries or 0):
                return True
            return bool(super()._should_retry(response, api_connection_error, num_retries, max_network_retries))

    return ThrottleRetrying()


def _metadata(obj: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj.to_dict().get("metadata") or {}).items()}


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


class StripeSDKSource:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, api_key: str, api_base: str | None = None, *, reads: bool = False) -> StripeSDKSource:
        """`reads`: a client for reads only, whose throttled requests are retried in place (four times)."""
        addresses: dict[str, str] = {"api": api_base, "meter_events": api_base} if api_base else {}
        if reads:
            return cls(
                stripe.StripeClient(
                    api_key,
                    base_addresses=addresses,  # type: ignore[arg-type]
                    max_network_retries=4,
                    http_client=throttle_retrying_http_client(),
                )
            )
        return cls(stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=2))  # type: ignore[arg-type]

    # -- customers and subscriptions --------------------------------------------------------------------------------
    def customers(self, statuses: Iterable[str]) -> Iterator[StripeCustomer]:
        wanted = set(statuses)
        pages = typed_stripe_call("list customers", lambda: self._client.v1.customers.list(params={"limit": PAGE}))
        for customer in pages.auto_paging_iter():
            yield self._customer(customer, wanted)

    def customer(self, customer_id: str) -> StripeCustomer:
        found = typed_stripe_call(f"retrieve {customer_id}", lambda: self._client.v1.customers.retrieve(customer_id))
        return self._customer(found, None)

    def customers_with_subscription_in(self, statuses: Iterable[str]) -> list[str]:
        query = " OR ".join(f"status:'{status}'" for status in statuses)
        pages = typed_stripe_call(
            "search subscriptions",
            lambda: self._client.v1.subscriptions.search(params={"query": query, "limit": PAGE}),
        )
        found: dict[str, None] = {}
        for subscription in pages.auto_paging_iter():
            customer = subscription.customer
            found[customer if isinstance(customer, str) else customer.id] = None
        return list(found)

    def price_keys(self) -> set[str]:
        pages = typed_stripe_call("list prices", lambda: self._client.v1.prices.list(params={"limit": PAGE}))
        keys: set[str] = set()
        for price in pages.auto_paging_iter():
            keys.add(price.id)
            if price.lookup_key:
                keys.add(price.lookup_key)
        return keys

    def _customer(self, customer: Any, statuses: set[str] | None) -> StripeCustomer:
        subscriptions = typed_stripe_call(
            f"list subscriptions of {customer.id}",
            lambda: self._client.v1.subscriptions.list(
                params={"customer": customer.id, "status": "all", "limit": PAGE, "expand": ["data.items.data.price"]}
            ),
        )
        views = typed_stripe_call(
            f"list subscriptions of {customer.id}",
            lambda: [
                _subscription(s) for s in subscriptions.auto_paging_iter() if statuses is None or s.status in statuses
            ],
        )
        settings = getattr(customer, "invoice_settings", None)
        method = getattr(settings, "default_payment_method", None) if settings is not None else None
        return StripeCustomer(
            id=customer.id,
            email=customer.email,
            name=customer.name,
            metadata=_metadata(customer),
            default_payment_method=method if isinstance(method, str) else getattr(method, "id", None),
            subscriptions=tuple(views),
        )

    def subscription(self, subscription_id: str) -> StripeSubscription:
        found = typed_stripe_call(
            f"retrieve {subscription_id}",
            lambda: self._client.v1.subscriptions.retrieve(subscription_id, params={"expand": ["items.data.price"]}),
        )
        return _subscription(found)

    def subscription_status(self, subscription_id: str) -> str:
        found = typed_stripe_call(
            f"retrieve {subscription_id}", lambda: self._client.v1.subscriptions.retrieve(subscription_id)
        )
        return str(found.status)

    def cancel_subscription(self, subscription_id: str, *, invoice_now: bool, prorate: bool) -> str:
        cancelled = typed_stripe_call(
            f"cancel {subscription_id}",
            lambda: self._client.v1.subscriptions.cancel(
                subscription_id, params={"prorate": prorate, "invoice_now": invoice_now}
            ),
        )
        return str(cancelled.status)

    def cancel_at_period_end(self, subscription_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"end {subscription_id} at period end",
            lambda: self._client.v1.subscriptions.update(
                subscription_id, params={"cancel_at_period_end": True}, options={"idempotency_key": idempotency_key}
            ),
        )

    def create_schedule(self, subscription_id: str, idempotency_key: str) -> str:
        made = typed_stripe_call(
            f"schedule {subscription_id}",
            lambda: self._client.v1.subscription_schedules.create(
                params={"from_subscription": subscription_id}, options={"idempotency_key": idempotency_key}
            ),
        )
        return str(made.id)

    # -- a rollback's writes ----------------------------------------------------------------------------------------
    def resume_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"resume {subscription_id}",
            lambda: self._client.v1.subscriptions.update(
                subscription_id, params={"cancel_at_period_end": False}, options={"idempotency_key": idempotency_key}
            ),
        )

    def release_schedule(self, schedule_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"release {schedule_id}",
            lambda: self._client.v1.subscription_schedules.release(
                schedule_id, options={"idempotency_key": idempotency_key}
            ),
        )

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
        moment = datetime.fromtimestamp(anchor, UTC)
        made = typed_stripe_call(
            f"recreate the subscription of {customer_id}",
            lambda: self._client.v1.subscriptions.create(
                params={
                    "customer": customer_id,
                    "items": [{"price": p, **({"quantity": q} if q else {})} for p, q in items],
                    "backdate_start_date": backdate_start_date,
                    "billing_cycle_anchor_config": {
                        "day_of_month": moment.day,
                        "hour": moment.hour,
                        "minute": moment.minute,
                        "second": moment.second,
                    },
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            ),
        )
        return str(made.id)

    def end_schedule_with_cancel(self, schedule_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"end schedule {schedule_id} with cancel",
            lambda: self._client.v1.subscription_schedules.update(
                schedule_id, params={"end_behavior": "cancel"}, options={"idempotency_key": idempotency_key}
            ),
        )

    def subscriptions_of(self, customer_id: str) -> list[StripeSubscription]:
        pages = typed_stripe_call(
            f"list subscriptions of {customer_id}",
            lambda: self._client.v1.subscriptions.list(
                params={"customer": customer_id, "status": "all", "limit": PAGE, "expand": ["data.items.data.price"]}
            ),
        )
        return [_subscription(s) for s in pages.auto_paging_iter()]

    # -- a clean-up's reads and writes --------------------------------------------------------------------------------
    def prices(self) -> list[StripePrice]:
        pages = typed_stripe_call("list prices", lambda: self._client.v1.prices.list(params={"limit": PAGE}))
        return [
            StripePrice(p.id, bool(p.active), p.recurring.meter if p.recurring is not None else None)
            for p in pages.auto_paging_iter()
        ]

    def meters(self) -> list[StripeMeter]:
        pages = typed_stripe_call("list meters", lambda: self._client.v1.billing.meters.list(params={"limit": PAGE}))
        return [StripeMeter(m.id, str(m.event_name), str(m.status)) for m in pages.auto_paging_iter()]

    def live_subscriptions_with_price(self, price_id: str) -> list[str]:
        pages = typed_stripe_call(
            f"list subscriptions on {price_id}",
            lambda: self._client.v1.subscriptions.list(params={"price": price_id, "limit": PAGE}),
        )
        return [s.id for s in pages.auto_paging_iter()]  # the default status filter: every status but canceled

    def archive_price(self, price_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"archive {price_id}",
            lambda: self._client.v1.prices.update(
                price_id, params={"active": False}, options={"idempotency_key": idempotency_key}
            ),
        )

    def deactivate_meter(self, meter_id: str, idempotency_key: str) -> None:
        typed_stripe_call(
            f"deactivate {meter_id}",
            lambda: self._client.v1.billing.meters.deactivate(meter_id, options={"idempotency_key": idempotency_key}),
        )

    # -- credits, usage, invoices -------------------------------------------------------------------------------------
    def credit_grants(self, customer_id: str) -> list[StripeCreditGrant]:
        pages = typed_stripe_call(
            f"list credit grants of {customer_id}",
            lambda: self._client.v1.billing.credit_grants.list(params={"customer": customer_id, "limit": PAGE}),
        )
        grants = typed_stripe_call(f"list credit grants of {customer_id}", lambda: list(pages.auto_paging_iter()))
        return [self._grant(customer_id, grant) for grant in grants]

    def _grant(self, customer_id: str, grant: Any) -> StripeCreditGrant:
        summary = typed_stripe_call(
            f"credit balance of {grant.id}",
            lambda: self._client.v1.billing.credit_balance_summary.retrieve(
                params={"customer": customer_id, "filter": {"type": "credit_grant", "credit_grant": grant.id}}
            ),
        )
        remaining = sum(
            int(b.available_balance.monetary.value) for b in summary.balances if b.available_balance.monetary
        )
        scope = grant.applicability_config.scope
        prices = getattr(scope, "prices", None) or []
        return StripeCreditGrant(
            id=grant.id,
            name=grant.name,
            category=grant.category,
            amount=int(grant.amount.monetary.value),
            remaining=remaining,
            currency=str(grant.amount.monetary.currency),
            priority=int(grant.priority if grant.priority is not None else 50),
            effective_at=_int_or_none(grant.effective_at),
            expires_at=_int_or_none(grant.expires_at),
            voided_at=_int_or_none(grant.voided_at),
            price_type=getattr(scope, "price_type", None),
            price_ids=tuple(p.id for p in prices),
        )

    def metered_usage(self, meter_id: str, customer_id: str, start: int, end: int) -> float:
        start, end = start - start % 60, end + (-end) % 60  # Stripe wants whole minutes
        if end <= start:
            return 0.0
        summaries = typed_stripe_call(
            f"event summaries of {meter_id}",
            lambda: self._client.v1.billing.meters.event_summaries.list(
                meter_id, params={"customer": customer_id, "start_time": start, "end_time": end, "limit": PAGE}
            ),
        )
        return float(sum(s.aggregated_value for s in summaries.auto_paging_iter()))

    def invoices(self, subscription_id: str) -> list[StripeInvoice]:
        pages = typed_stripe_call(
            f"list invoices of {subscription_id}",
            lambda: self._client.v1.invoices.list(params={"subscription": subscription_id, "limit": PAGE}),
        )
        return typed_stripe_call(
            f"list invoices of {subscription_id}", lambda: [_invoice(i) for i in pages.auto_paging_iter()]
        )

    # -- parity reads --------------------------------------------------------------------------------------------------
    def invoice_preview(self, customer_id: str, subscription_id: str) -> StripeInvoice | None:
        def preview() -> Any:
            try:
                return self._client.v1.invoices.create_preview(
                    params={"customer": customer_id, "subscription": subscription_id}
                )
            except stripe.InvalidRequestError as exc:
                if exc.code == "invoice_upcoming_none":  # nothing comes next (an ended subscription)
                    return None
                raise

        found = typed_stripe_call(f"invoice preview of {subscription_id}", preview)
        return None if found is None else _invoice(found)

    def credit_grants_of_transactions(self, customer_id: str) -> dict[str, str]:
        pages = typed_stripe_call(
            f"credit balance transactions of {customer_id}",
            lambda: self._client.v1.billing.credit_balance_transactions.list(
                params={"customer": customer_id, "limit": PAGE}
            ),
        )
        found: dict[str, str] = {}
        transactions = typed_stripe_call(
            f"credit balance transactions of {customer_id}", lambda: list(pages.auto_paging_iter())
        )
        for transaction in transactions:
            grant = transaction.credit_grant
            found[transaction.id] = grant if isinstance(grant, str) else grant.id
        return found


def _subscription(subscription: Any) -> StripeSubscription:
    items = []
    for item in subscription["items"].data:
        price = item.price
        recurring = price.recurring
        metered = recurring is not None and recurring.meter is not None
        items.append(
            StripeItem(
                price_id=price.id,
                lookup_key=price.lookup_key,
                quantity=0 if metered else int(item.quantity or 1),
                interval=recurring.interval if recurring is not None else None,
                meter_id=recurring.meter if recurring is not None else None,
                period_start=int(item.current_period_start),
                period_end=int(item.current_period_end),
                unit_amount=_int_or_none(price.unit_amount),
                currency=str(price.currency),
                product_id=price.product if isinstance(price.product, str) else getattr(price.product, "id", None),
            )
        )
    first = items[0] if items else None
    thresholds = getattr(subscription, "billing_thresholds", None)
    return StripeSubscription(
        id=subscription.id,
        status=subscription.status,
        start_date=int(subscription.start_date),
        items=tuple(items),
        billing_cycle_anchor=_int_or_none(subscription.billing_cycle_anchor),
        current_period_start=first.period_start if first else None,
        current_period_end=first.period_end if first else None,
        cancel_at_period_end=bool(subscription.cancel_at_period_end),
        cancel_at=_int_or_none(subscription.cancel_at),
        trial_end=_int_or_none(subscription.trial_end),
        metadata=_metadata(subscription),
        billing_threshold=_int_or_none(getattr(thresholds, "amount_gte", None)) if thresholds else None,
        schedule_id=_id_of(getattr(subscription, "schedule", None)),
        ended_at=_int_or_none(getattr(subscription, "ended_at", None)),
        customer_id=_id_of(getattr(subscription, "customer", None)),
    )


def _id_of(value: Any) -> str | None:
    """An expandable field: the id, whether Stripe sent the id or the object."""
    if value is None or isinstance(value, str):
        return value
    return str(value.id)


def _invoice(invoice: Any) -> StripeInvoice:
    parent = invoice.parent
    details = getattr(parent, "subscription_details", None) if parent is not None else None
    lines = []
    for line in invoice.lines.data:
        pricing = getattr(line, "pricing", None)
        price_details = getattr(pricing, "price_details", None) if pricing is not None else None
        lines.append(
            StripeInvoiceLine(
                price_id=getattr(price_details, "price", None),
                quantity=float(line.quantity or 0),
                amount=int(line.amount),
                period_start=int(line.period.start),
                period_end=int(line.period.end),
            )
        )
    return StripeInvoice(
        id=invoice.id or "preview",
        subscription_id=getattr(details, "subscription", None),
        status=str(invoice.status),
        period_start=int(invoice.period_start),
        period_end=int(invoice.period_end),
        subtotal=int(invoice.subtotal),
        total=int(invoice.total),
        credits_applied=sum(int(c.amount) for c in (invoice.total_pretax_credit_amounts or [])),
        currency=str(invoice.currency),
        lines=tuple(lines),
        billing_reason=invoice.billing_reason,
        credit_transactions=tuple(
            (_str_or_none(getattr(c, "credit_balance_transaction", None)), int(c.amount))
            for c in (invoice.total_pretax_credit_amounts or [])
            if c.type == "credit_balance_transaction"
        ),
    )


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(getattr(value, "id", value))
