"""`StripeSDKSource`, the Stripe port both paths use, against the Stripe emulator through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
from billmig.adapters.stripe_sdk import StripeSDKSource
from billmig.errors import VendorRejected, VendorUnavailable
from billmig_local.emulators.control_plane import FaultRule
from stripe_world import World, at, customer_on_clock, make_prices, usage


def _grant(world: World, customer: str, value: int, category: str, priority: int, **extra: Any) -> str:
    params = {
        "customer": customer,
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        "category": category,
        "priority": priority,
        **extra,
    }
    return world.client.v1.billing.credit_grants.create(params=params).id  # type: ignore[arg-type]


def test_customers_subscriptions_grants_usage_and_invoices_read_as_views(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    c.customers.update(customer, params={"metadata": {"internal_customer_id": "acct-7"}})
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.graduated}, {"price": prices.licensed}]}
    )
    paid = _grant(world, customer, 5000, "paid", 10)
    promo = _grant(
        world, customer, 700, "promotional", 0, applicability_config={"scope": {"prices": [{"id": prices.per_unit}]}}
    )
    source = StripeSDKSource(world.client)

    view = source.customer(customer)
    assert view.metadata == {"internal_customer_id": "acct-7"}
    [subscription] = view.subscriptions
    metered, licensed = sorted(subscription.items, key=lambda i: i.meter_id is None)
    assert (metered.price_id, metered.quantity, metered.meter_id is not None) == (prices.graduated, 0, True)
    assert (licensed.price_id, licensed.quantity, licensed.unit_amount) == (prices.licensed, 1, 9900)
    assert (subscription.start_date, subscription.billing_cycle_anchor) == (at(1), at(1))
    assert (subscription.current_period_start, subscription.current_period_end) == (at(1), at(1, 2))
    grants = {g.id: g for g in source.credit_grants(customer)}
    assert (grants[paid].category, grants[paid].remaining, grants[paid].priority) == ("paid", 5000, 10)
    assert (grants[paid].price_type, grants[promo].price_ids) == ("metered", (prices.per_unit,))

    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(5)})
    usage(world.client, "t.api", customer, 4000, "api-1", at(5))  # 1,000 free + 3,000 x 2c = 6,000
    assert source.metered_usage(metered.meter_id or "", customer, at(1), at(1, 2)) == 4000
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2) + 3600})

    cycle = next(i for i in source.invoices(sub.id) if i.billing_reason == "subscription_cycle")
    assert (cycle.period_start, cycle.period_end, cycle.subscription_id) == (at(1), at(1, 2), sub.id)
    assert (cycle.subtotal, cycle.credits_applied, cycle.total) == (15900, 5000, 10900)
    assert {(line.price_id, line.quantity, line.amount) for line in cycle.lines} == {
        (prices.graduated, 4000, 6000),
        (prices.licensed, 1, 9900),
    }
    remaining = {g.id: g.remaining for g in source.credit_grants(customer)}
    assert remaining == {paid: 0, promo: 700}  # the paid grant drawn down; the price-scoped one untouched


@pytest.mark.parametrize(("invoice_now", "final_invoices"), [(True, 1), (False, 0)])
def test_cancel_takes_invoice_now_and_prorate_as_arguments(
    world: World, invoice_now: bool, final_invoices: int
) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.graduated}]})
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(10)})
    usage(world.client, "t.api", customer, 2000, "api-1", at(10))
    source = StripeSDKSource(world.client)
    before = len(source.invoices(sub.id))
    assert source.cancel_subscription(sub.id, invoice_now=invoice_now, prorate=False) == "canceled"
    assert source.subscription_status(sub.id) == "canceled"
    assert len(source.invoices(sub.id)) - before == final_invoices


def test_errors_are_typed_for_the_state_machines(world: World) -> None:
    source = StripeSDKSource(world.client)
    with pytest.raises(VendorRejected, match="cus_Nobody"):
        source.customer("cus_Nobody")
    world.emulator.control.add_fault(FaultRule(path="/v1/customers", status=503))
    with pytest.raises(VendorUnavailable):
        source.customer("cus_Nobody")
