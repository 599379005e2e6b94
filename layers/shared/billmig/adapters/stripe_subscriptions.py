"""Stripe subscriptions, as the Stigg import needs them: read the status, cancel at once without proration.

A DELETE carries no idempotency key in Stripe, so the caller reads the status first; errors are typed so Step
Functions retries only 429s and outages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe

from billmig.errors import IdempotencyKeyReused, VendorRejected, VendorThrottled, VendorUnavailable

_T = TypeVar("_T")


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


class StripeSubscriptionSource:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, api_key: str, api_base: str | None = None) -> StripeSubscriptionSource:
        addresses: dict[str, str] = {"api": api_base, "meter_events": api_base} if api_base else {}
        return cls(stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=2))  # type: ignore[arg-type]

    def subscription_status(self, subscription_id: str) -> str:
        subscription = typed_stripe_call(
            f"retrieve {subscription_id}", lambda: self._client.v1.subscriptions.retrieve(subscription_id)
        )
        return str(subscription.status)

    def cancel_now_without_proration(self, subscription_id: str) -> str:
        cancelled = typed_stripe_call(
            f"cancel {subscription_id}",
            lambda: self._client.v1.subscriptions.cancel(
                subscription_id, params={"prorate": False, "invoice_now": False}
            ),
        )
        return str(cancelled.status)
