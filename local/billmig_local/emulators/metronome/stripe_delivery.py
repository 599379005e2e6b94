"""How the emulator reaches Stripe: billable invoices become invoices of the Stripe customer, and a STRIPE payment
gate charges an auto-recharge, both through the official `stripe` SDK against the Stripe emulator.

Off until a URL is given (`BillingEngine.connect_stripe`, done by `billmig local up` when a Stripe emulator runs,
or $BILLMIG_METRONOME_STRIPE_API_BASE): then deliveries are only recorded, as before. Every Stripe write carries an
`Idempotency-Key` derived from the Metronome object, so a delivery retried after a crash or a 5xx creates nothing
twice. A 4xx (no such Stripe customer, a declined card) is permanent; connection errors and 5xx are retried later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

STRIPE_URL_ENV = "BILLMIG_METRONOME_STRIPE_API_BASE"


@dataclass
class Outcome:
    """What one Stripe write came to: `status` is paid | open | failed (permanent) | retry (transient)."""

    status: str
    stripe_invoice_id: str | None = None
    error: str | None = None


class StripeGateway:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or None
        self._client: stripe.StripeClient | None = None

    @property
    def connected(self) -> bool:
        return self.url is not None

    def connect(self, url: str | None) -> None:
        self.url = url or None
        self._client = None

    def client(self) -> stripe.StripeClient:
        if self.url is None:
            raise RuntimeError("no Stripe emulator connected")
        if self._client is None:
            self._client = stripe.StripeClient(
                "sk_test_metronome_emulator",
                base_addresses={"api": self.url, "meter_events": self.url},
                max_network_retries=0,
            )
        return self._client

    def invoice(
        self,
        *,
        key: str,
        stripe_customer_id: str,
        collection_method: str,
        lines: list[tuple[str, int]],
        metadata: dict[str, str],
        days_until_due: int | None = None,
    ) -> Outcome:
        """A one-off Stripe invoice with one invoice item per (description, amount), finalized (and, charged
        automatically, paid at once)."""
        try:
            v1 = self.client().v1
            params: dict[str, Any] = {
                "customer": stripe_customer_id,
                "collection_method": collection_method,
                "auto_advance": True,
                "metadata": metadata,
            }
            if collection_method == "send_invoice":
                params["days_until_due"] = days_until_due if days_until_due is not None else 30
            draft = v1.invoices.create(params=params, options={"idempotency_key": f"{key}:invoice"})  # type: ignore[arg-type]
            for index, (description, amount) in enumerate(lines):
                v1.invoice_items.create(
                    params={
                        "customer": stripe_customer_id,
                        "invoice": str(draft.id),
                        "amount": amount,
                        "description": description,
                    },
                    options={"idempotency_key": f"{key}:item:{index}"},
                )
            done = v1.invoices.finalize_invoice(str(draft.id), options={"idempotency_key": f"{key}:finalize"})
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            return Outcome("retry", error=str(error))
        except stripe.StripeError as error:
            status = error.http_status or 500
            return Outcome("retry" if status >= 500 or status == 409 else "failed", error=str(error.user_message))
        return Outcome("paid" if done.status == "paid" else "open", stripe_invoice_id=str(done.id))
