"""One month of the same usage prices the same in Stripe and in Metronome, each seeded from the shared catalogue by
its own seed, through its own SDK, on one world clock. The unrated region is the migration guide's common mistake:
Stripe charges it, Metronome sees the usage and charges nothing, so it is left out of the comparison and checked
apart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import stripe
from billmig_local.catalogue import STANDARD, UNRATED_REGION
from billmig_local.clock import WorldClock, to_rfc3339
from billmig_local.emulators import metronome as metronome_emulator
from billmig_local.emulators import stripe as stripe_emulator
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe.book_of_business import ensure_catalogue
from metronome import Metronome


def at(day: int, month: int = 1, hour: int = 0) -> datetime:
    return datetime(2031, month, day, hour, tzinfo=UTC)


# (offering key, pricing-group value, [(day, quantity)]); api_calls is a count: one event per call
USAGE = [
    ("api_calls", None, [(2 + n % 17, 1) for n in range(1_600)]),
    ("compute_minutes", None, [(3, 120), (4, 45), (5, 35)]),
    ("storage_gb", "us-east", [(3, 30), (9, 40)]),
    ("storage_gb", "eu-west", [(4, 12)]),
]
UNRATED = ("storage_gb", UNRATED_REGION, [(4, 7)])


def test_one_month_of_the_same_usage_prices_the_same_in_both(tmp_path: Path) -> None:
    clock = WorldClock(tmp_path / "clock.json", start_at=at(1).timestamp())
    stripe_server = stripe_emulator.start(clock=clock, state_dir=tmp_path)
    metronome_server = metronome_emulator.start(clock=clock, state_dir=tmp_path)
    try:
        url = stripe_server.url
        s = stripe.StripeClient(
            "sk_test_parity", base_addresses={"api": url, "meter_events": url}, max_network_retries=0
        )
        m = Metronome(bearer_token="parity", base_url=metronome_server.url, max_retries=0)
        stripe_book = ensure_catalogue(s, int(at(1).timestamp()))
        metronome_ids = seed_catalogue(m)

        customer = s.v1.customers.create(params={"email": "parity@example.com"}).id
        prices = [{"price": p.price} for p in stripe_book.metered.values()]
        subscription = s.v1.subscriptions.create(params={"customer": customer, "items": prices}).id
        m_customer = m.v1.customers.create(name="parity", ingest_aliases=["acct-parity"]).data.id
        m.v1.contracts.create(
            customer_id=m_customer,
            starting_at=at(1),
            rate_card_id=metronome_ids.rate_card_id,
            usage_statement_schedule={"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"},
        )

        clock.set(at(20).timestamp())
        stripe_events, metronome_events = [], []
        for key, region, amounts in [*USAGE, UNRATED]:
            offering = STANDARD.offering(key)
            for n, (day, quantity) in enumerate(amounts):
                ident = f"{key}-{region}-{n}"
                stripe_events.append(
                    {
                        "event_name": offering.stripe_event_name(region),
                        "payload": {"stripe_customer_id": customer, "value": str(quantity)},
                        "identifier": ident,
                        "timestamp": to_rfc3339(at(day).timestamp() + n),
                    }
                )
                properties: dict[str, object] = {offering.value_property: quantity}
                if region is not None:
                    properties[offering.pricing_group_key or ""] = region
                metronome_events.append(
                    {
                        "transaction_id": ident,
                        "customer_id": "acct-parity",
                        "event_type": offering.metric,
                        "timestamp": to_rfc3339(at(day).timestamp() + n),
                        "properties": properties,
                    }
                )
        token = s.v2.billing.meter_event_session.create().authentication_token
        for start in range(0, len(stripe_events), 100):
            s.v2.billing.meter_event_stream.create(
                params={"events": stripe_events[start : start + 100]},  # type: ignore[typeddict-item]
                options={"api_key": token},
            )
        for start in range(0, len(metronome_events), 100):
            m.v1.usage.ingest(usage=metronome_events[start : start + 100])  # type: ignore[arg-type]

        clock.set(at(2, 2, hour=1).timestamp())  # January over, past Metronome's 24 h grace period

        (stripe_invoice,) = [
            i
            for i in s.v1.invoices.list(params={"subscription": subscription}).data
            if i.billing_reason == "subscription_cycle"
        ]
        stripe_lines = {
            line.pricing.price_details.price: line.amount  # type: ignore[union-attr]
            for line in s.v1.invoices.line_items.list(stripe_invoice.id, params={"limit": 100}).data
        }
        january = next(iter(m.v1.customers.invoices.list(customer_id=m_customer, type="USAGE")))
        assert january.status == "FINALIZED"

        unrated = stripe_book.metered[stripe_book.unrated_lookup_key].price
        rated_stripe_total = sum(amount for price, amount in stripe_lines.items() if price != unrated)
        # 1,600 calls: 1,000 x 0c + 600 x 2c = 1,200; 200 minutes x 3c = 600; us-east latest 40 GB x 20c = 800;
        # eu-west 12 GB x 25c = 300
        assert rated_stripe_total == january.total == 1_200 + 600 + 800 + 300
        assert stripe_lines[unrated] > 0
        assert all(li.pricing_group_values != {"region": UNRATED_REGION} for li in january.line_items)
    finally:
        stripe_server.server.stop()
        metronome_server.server.stop()
