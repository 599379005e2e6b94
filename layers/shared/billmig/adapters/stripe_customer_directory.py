"""`StripeCustomerDirectory` on Stripe's customer search: the Stripe customer whose metadata holds an internal id.

Only for customers in no migration run (the others' Stripe id is the progress item's subject); the router caches
the answer, and Search is limited to 20 requests/s, so it is asked once per customer per cache lifetime.
"""

from __future__ import annotations

import stripe

from billmig.adapters.stripe_sdk import typed_stripe_call


class StripeSearchDirectory:
    def __init__(self, client: stripe.StripeClient, metadata_key: str) -> None:
        self._client = client
        self._key = metadata_key

    def stripe_customer_for(self, internal_id: str) -> str | None:
        quoted = internal_id.replace("\\", "\\\\").replace("'", "\\'")
        found = typed_stripe_call(
            f"search customer {internal_id}",
            lambda: self._client.v1.customers.search(
                params={"query": f"metadata['{self._key}']:'{quoted}'", "limit": 2}
            ),
        )
        live = [c.id for c in found.data if not getattr(c, "deleted", False)]
        return live[0] if live else None
