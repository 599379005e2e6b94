"""Every route the emulator serves is driven through the official SDK at least once (checked on its request log)."""

from __future__ import annotations

import re

import httpx
import pytest
import stripe
from billmig_local.emulators.stripe.app import ROUTES
from stripe_world import World, at, customer_on_clock, make_prices, usage


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


def test_every_route_is_driven_through_the_sdk(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))

    product = c.products.create(params={"name": "Extra"})
    assert c.products.retrieve(product.id).name == "Extra"
    assert c.products.update(product.id, params={"description": "more"}).description == "more"
    assert product.id in [p.id for p in c.products.list(params={"limit": 100}).data]
    assert c.prices.retrieve(prices.per_unit).unit_amount == 3
    assert c.prices.update(prices.per_unit, params={"nickname": "compute"}).nickname == "compute"

    meter = next(m for m in c.billing.meters.list().data if m.event_name == "t.compute")
    assert c.billing.meters.retrieve(meter.id).event_name == "t.compute"
    assert c.billing.meters.update(meter.id, params={"display_name": "Compute!"}).display_name == "Compute!"

    method = c.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    attached = c.payment_methods.attach(method.id, params={"customer": customer})
    assert attached.customer == customer
    assert c.customers.update(customer, params={"invoice_settings": {"default_payment_method": method.id}})
    assert c.customers.list(params={"test_clock": clock}).data[0].id == customer

    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    assert c.subscriptions.update(sub.id, params={"metadata": {"a": "b"}}).metadata["a"] == "b"
    usage(world.client, "t.compute", customer, 3, "every-1", at(1))
    grant = c.billing.credit_grants.create(
        params={
            "customer": customer,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 5}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "promotional",
        }
    )
    assert c.billing.credit_grants.retrieve(grant.id).amount.monetary.value == 5  # type: ignore[union-attr]
    assert c.billing.credit_grants.update(grant.id, params={"metadata": {"why": "test"}}).metadata["why"] == "test"
    assert [g.id for g in c.billing.credit_grants.list(params={"customer": customer}).data] == [grant.id]
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2)})
    [credited] = [
        i for i in c.invoices.list(params={"customer": customer}).data if i.billing_reason == "subscription_cycle"
    ]
    assert c.invoices.retrieve(credited.id, params={"expand": ["customer"]}).customer.id == customer  # type: ignore[union-attr]
    debit = next(
        t for t in c.billing.credit_balance_transactions.list(params={"customer": customer}).data if t.type == "debit"
    )
    assert c.billing.credit_balance_transactions.retrieve(debit.id).credit_grant == grant.id
    expired = c.billing.credit_grants.expire(grant.id)
    assert expired.expires_at == at(1, 2)
    assert c.billing.credit_grants.void_grant(grant.id).voided_at == at(1, 2)
    with pytest.raises(stripe.InvalidRequestError):
        c.billing.credit_grants.void_grant(grant.id)
    assert c.subscription_items.retrieve(sub["items"].data[0].id).price.id == prices.per_unit
    c.subscriptions.cancel(sub.id)
    for removed in ("/v1/invoices/upcoming", "/v1/invoices/upcoming/lines"):  # SDK 16 has no method for them
        upcoming = httpx.get(
            world.emulator.url + removed, params={"customer": customer}, headers={"Authorization": "Bearer sk_test_x"}
        )
        assert upcoming.status_code == 404

    # the rest of the surface, one call each
    assert c.customers.retrieve(customer).test_clock == clock
    assert method.id in [m.id for m in c.customers.payment_methods.list(customer).data]
    assert c.payment_methods.retrieve(method.id).id == method.id
    assert prices.per_unit in [p.id for p in c.prices.list(params={"limit": 100}).data]
    c.billing.meters.deactivate(meter.id)
    c.billing.meters.reactivate(meter.id)
    c.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": at(1), "end_time": at(2)}
    )
    second = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.licensed}]})
    assert second.id in [x.id for x in c.subscriptions.list(params={"customer": customer}).data]
    assert c.subscriptions.retrieve(second.id).status == "active"
    item = c.subscription_items.create(params={"subscription": second.id, "price": prices.graduated})
    c.subscription_items.update(item.id, params={"metadata": {"k": "v"}})
    assert len(c.subscription_items.list(params={"subscription": second.id}).data) == 2
    c.subscription_items.delete(item.id)
    preview = c.invoices.create_preview(params={"customer": customer, "subscription": second.id})
    assert preview.total == 9900
    assert c.invoices.line_items.list(credited.id).data
    assert c.billing.credit_balance_summary.retrieve(
        params={
            "customer": customer,
            "filter": {"type": "applicability_scope", "applicability_scope": {"price_type": "metered"}},
        }
    ).balances
    spare = c.test_helpers.test_clocks.create(params={"frozen_time": at(1)})
    assert c.test_helpers.test_clocks.retrieve(spare.id).frozen_time == at(1)
    assert spare.id in [x.id for x in c.test_helpers.test_clocks.list().data]
    c.test_helpers.test_clocks.delete(spare.id)
    session = world.client.v2.billing.meter_event_session.create()
    world.client.v2.billing.meter_event_stream.create(
        params={"events": [{"event_name": "t.compute", "payload": {"stripe_customer_id": customer, "value": "1"}}]},
        options={"api_key": session.authentication_token},
    )
    assert c.customers.delete(c.customers.create().id).deleted is True
    assert [x.id for x in c.customers.search(params={"query": f"test_clock:'{clock}'"}).data] == [customer]
    assert second.id in [x.id for x in c.subscriptions.search(params={"query": f"customer:'{customer}'"}).data]
    assert [p.id for p in c.prices.search(params={"query": f"product:'{product.id}'"}).data] == []

    draft = c.invoices.create(params={"customer": customer, "auto_advance": False})
    one_off = c.invoice_items.create(params={"customer": customer, "amount": 700, "invoice": draft.id})
    assert c.invoice_items.retrieve(one_off.id).invoice == draft.id
    assert [i.id for i in c.invoice_items.list(params={"invoice": draft.id}).data] == [one_off.id]
    assert c.invoices.finalize_invoice(draft.id).status == "open"
    assert c.invoices.pay(draft.id).status == "paid"

    third = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.licensed}]})
    schedule = c.subscription_schedules.create(params={"from_subscription": third.id})
    assert c.subscription_schedules.update(schedule.id, params={"metadata": {"k": "v"}}).metadata["k"] == "v"
    assert c.subscription_schedules.retrieve(schedule.id).subscription == third.id
    assert schedule.id in [x.id for x in c.subscription_schedules.list(params={"customer": customer}).data]
    assert c.subscription_schedules.release(schedule.id).status == "released"
    again = c.subscription_schedules.create(params={"from_subscription": third.id})
    assert c.subscription_schedules.cancel(again.id).status == "canceled"

    log = httpx.get(world.emulator.url + "/_emulator/requests").json()
    driven = {(entry["method"], entry["path"]) for entry in log}
    missing = [
        f"{method} {path}"
        for method, path, _handler, _params in ROUTES
        if not any(m == method and _route_pattern(path).match(p) for m, p in driven)
    ]
    assert missing == [], missing
