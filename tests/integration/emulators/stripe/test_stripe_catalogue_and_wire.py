"""Customers, products, prices, wire format, validation, lists and errors, through the official SDK over HTTP."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import stripe
from stripe_world import World


def test_customer_with_metadata_and_default_payment_method(shared_world: World) -> None:
    c = shared_world.client.v1
    customer = c.customers.create(
        params={
            "email": "ops@example.com",
            "name": "Example Co",
            "metadata": {"internal_customer_id": "acct_000123"},
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.metadata["internal_customer_id"] == "acct_000123"
    method_id = customer.invoice_settings.default_payment_method
    assert isinstance(method_id, str) and method_id.startswith("pm_")
    method = c.payment_methods.retrieve(method_id)
    assert method.customer == customer.id and method.card is not None and method.card.last4 == "4242"
    listed = c.customers.payment_methods.list(customer.id)
    assert [m.id for m in listed.data] == [method_id]

    updated = c.customers.update(customer.id, params={"metadata": {"tier": "gold", "internal_customer_id": ""}})
    assert updated.metadata.to_dict() == {"tier": "gold"}
    assert c.customers.retrieve(customer.id).email == "ops@example.com"
    deleted = c.customers.delete(customer.id)
    assert deleted.deleted is True


def test_prices_per_unit_tiered_transform_and_lookup_keys(shared_world: World) -> None:
    c = shared_world.client.v1
    product = c.products.create(params={"name": "Compute", "metadata": {"k": "v"}})
    meter = c.billing.meters.create(
        params={"display_name": "Compute", "event_name": "catalogue.compute", "default_aggregation": {"formula": "sum"}}
    )
    per_unit = c.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount_decimal": "0.5",
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
            "transform_quantity": {"divide_by": 10, "round": "up"},
            "lookup_key": "catalogue_compute",
        }
    )
    assert per_unit.unit_amount is None and per_unit.unit_amount_decimal == Decimal("0.5")
    assert per_unit.recurring is not None and per_unit.recurring.meter == meter.id
    assert per_unit.transform_quantity is not None and per_unit.transform_quantity.divide_by == 10
    tiered = c.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "volume",
            "tiers": [{"up_to": 100, "unit_amount": 5}, {"up_to": "inf", "unit_amount": 3, "flat_amount": 100}],
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    expanded = c.prices.retrieve(tiered.id, params={"expand": ["tiers"]})
    assert expanded.tiers is not None
    assert [(t.up_to, t.unit_amount, t.flat_amount) for t in expanded.tiers] == [(100, 5, None), (None, 3, 100)]
    found = c.prices.list(params={"lookup_keys": ["catalogue_compute"]})
    assert [p.id for p in found.data] == [per_unit.id]
    with pytest.raises(stripe.InvalidRequestError) as taken:
        c.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount": 1, "lookup_key": "catalogue_compute"}
        )
    assert taken.value.param == "lookup_key"
    archived = c.prices.update(per_unit.id, params={"active": False})
    assert archived.active is False
    assert per_unit.id not in [p.id for p in c.prices.list(params={"active": True, "product": product.id}).data]


def test_metered_price_needs_an_active_meter(shared_world: World) -> None:
    c = shared_world.client.v1
    product = c.products.create(params={"name": "Legacy"})
    with pytest.raises(stripe.InvalidRequestError) as legacy:
        c.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "month", "usage_type": "metered"},
            }
        )
    assert legacy.value.param == "recurring[meter]"
    meter = c.billing.meters.create(
        params={"display_name": "Old", "event_name": "catalogue.old", "default_aggregation": {"formula": "count"}}
    )
    c.billing.meters.deactivate(meter.id)
    with pytest.raises(stripe.InvalidRequestError):
        c.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
            }
        )


def test_params_violation_names_the_param(shared_world: World) -> None:
    c = shared_world.client.v1
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        c.customers.create(params={"emial": "x@example.com"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "emial"
    assert unknown.value.http_status == 400
    assert unknown.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as nested:
        c.subscriptions.create(params={"customer": "cus_x", "items": [{"prise": "price_x"}]})  # type: ignore[typeddict-item]
    assert nested.value.param == "items[0][prise]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        c.billing.meters.create(params={"display_name": "x", "default_aggregation": {"formula": "sum"}})  # type: ignore[typeddict-item]
    assert missing.value.param == "event_name"
    with pytest.raises(stripe.InvalidRequestError) as bad_int:
        c.products.list(params={"limit": "many"})  # type: ignore[typeddict-item]
    assert bad_int.value.param == "limit"


def test_lists_page_with_cursors(shared_world: World) -> None:
    c = shared_world.client.v1
    made = [c.products.create(params={"name": f"Paged {n}", "metadata": {"batch": "paging"}}).id for n in range(5)]
    first = c.products.list(params={"limit": 2})
    assert first.has_more is True and len(first.data) == 2
    assert first.data[0].id == made[-1]  # newest first
    second = c.products.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [p.id for p in second.data] == [made[-3], made[-4]]
    back = c.products.list(params={"limit": 2, "ending_before": second.data[0].id})
    assert [p.id for p in back.data] == [p.id for p in first.data]
    every = [p.id for p in c.products.list(params={"limit": 2}).auto_paging_iter()]
    assert set(made) <= set(every) and len(every) == len(set(every))


def test_missing_objects_unknown_urls_and_auth(shared_world: World) -> None:
    c = shared_world.client.v1
    with pytest.raises(stripe.InvalidRequestError) as missing:
        c.customers.retrieve("cus_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    upcoming = httpx.get(
        shared_world.emulator.url + "/v1/invoices/upcoming", headers={"Authorization": "Bearer sk_test_x"}
    )
    assert upcoming.status_code == 404
    assert upcoming.json()["error"]["type"] == "invalid_request_error"
    anonymous = httpx.get(shared_world.emulator.url + "/v1/customers")
    assert anonymous.status_code == 401
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("", base_addresses={"api": shared_world.emulator.url}).v1.customers.list()


def test_form_encoding_round_trips_nested_params_and_versions(shared_world: World) -> None:
    raw = httpx.post(
        shared_world.emulator.url + "/v1/customers",
        content="metadata[a]=1&metadata[0]=zero&preferred_locales[0]=en&preferred_locales[1]=fr&expand[]=invoice_settings.default_payment_method",
        headers={
            "Authorization": "Bearer sk_test_x",
            "Content-Type": "application/x-www-form-urlencoded",
            "Stripe-Version": "2026-10-28.endive",
        },
    )
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["metadata"] == {"a": "1", "0": "zero"}
    assert body["preferred_locales"] == ["en", "fr"]
    assert raw.headers["stripe-version"] == "2026-10-28.endive"
    assert raw.headers["request-id"].startswith("req_")


def test_search_finds_customers_subscriptions_and_prices_by_metadata_and_fields(shared_world: World) -> None:
    c = shared_world.client.v1
    made = [
        c.customers.create(
            params={"email": f"search{n}@example.com", "metadata": {"internal_customer_id": f"acct_9{n}"}}
        )
        for n in range(3)
    ]
    found = c.customers.search(params={"query": "metadata['internal_customer_id']:'acct_91'"})
    assert [x.id for x in found.data] == [made[1].id]
    both = c.customers.search(params={"query": 'email:"search0@example.com" OR email:"search2@example.com"'})
    assert {x.id for x in both.data} == {made[0].id, made[2].id}
    paged = c.customers.search(params={"query": "email~'search'", "limit": 2})
    assert paged.has_more is True and paged.next_page
    rest = c.customers.search(params={"query": "email~'search'", "limit": 2, "page": paged.next_page})
    assert {x.id for x in paged.data} | {x.id for x in rest.data} >= {m.id for m in made}
    assert [
        x.id
        for x in c.customers.search(
            params={"query": "email~'search' AND -metadata['internal_customer_id']:'acct_90'"}
        ).auto_paging_iter()
    ][:2] == [made[2].id, made[1].id]
    with pytest.raises(stripe.InvalidRequestError) as mixed:
        c.customers.search(params={"query": "email:'a' AND name:'b' OR name:'c'"})
    assert mixed.value.param == "query"

    product = c.products.create(params={"name": "Searchable"})
    price = c.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 5, "lookup_key": "searchable_key"}
    )
    assert [p.id for p in c.prices.search(params={"query": "lookup_key:'searchable_key'"}).data] == [price.id]
    assert price.id in [
        p.id for p in c.prices.search(params={"query": f"product:'{product.id}' AND active:'true'"}).data
    ]
    assert c.subscriptions.search(params={"query": "status:'past_due' AND metadata['nobody']:'x'"}).data == []
