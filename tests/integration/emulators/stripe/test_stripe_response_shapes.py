"""Every object type the emulator returns has exactly the keys of Stripe's own example object (fixtures3.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from stripe_world import World, at, customer_on_clock, make_prices, usage

REPO = Path(__file__).resolve().parents[4]
FIXTURES = Path(os.environ.get("BILLMIG_VENDOR_DATA") or REPO.parent / "shared" / "vendor" / "data")
# Keys Stripe includes only when they apply, so its example object (where they are null) leaves them out.
OPTIONAL_KEYS = {"invoice": {"threshold_reason"}}


def _fixture_keys() -> dict[str, set[str]]:
    resources = json.loads((FIXTURES / "stripe-fixtures3.json").read_text())["resources"]
    return {name: set(example) for name, example in resources.items()}


def _collect(node: Any, found: dict[str, list[dict[str, Any]]]) -> None:
    """Every object in a response, nested ones included (lists are envelopes, not objects)."""
    if isinstance(node, list):
        for item in node:
            _collect(item, found)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("object")
    if isinstance(kind, str) and kind != "list":
        name = f"deleted_{kind}" if node.get("deleted") else kind
        found.setdefault(name, []).append(node)
    for value in node.values():
        _collect(value, found)


def test_every_returned_object_type_matches_the_fixture_key_set(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices.per_unit}, {"price": prices.licensed}],
            "billing_thresholds": {"amount_gte": 100},
        }
    )
    grant = c.billing.credit_grants.create(
        params={
            "customer": customer,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 50}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "paid",
        }
    )
    usage(world.client, "t.compute", customer, 40, "shape-1", at(1))  # threshold invoice with credits
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2)})
    item = c.subscription_items.create(params={"subscription": sub.id, "price": prices.graduated})
    meter = c.billing.meters.list().data[0]
    invoice = c.invoices.list(params={"subscription": sub.id}).data[0]
    spare_clock = c.test_helpers.test_clocks.create(params={"frozen_time": at(1)}).id
    spare_customer = c.customers.create().id

    base = world.emulator.url
    headers = {"Authorization": "Bearer sk_test_shapes"}
    gets = [
        f"/v1/customers/{customer}",
        "/v1/customers",
        f"/v1/customers/{customer}/payment_methods",
        "/v1/products",
        "/v1/prices",
        "/v1/billing/meters",
        f"/v1/billing/meters/{meter.id}/event_summaries?customer={customer}&start_time={at(1)}&end_time={at(2)}",
        f"/v1/subscriptions/{sub.id}",
        "/v1/subscriptions?status=all",
        f"/v1/subscription_items?subscription={sub.id}",
        f"/v1/invoices?customer={customer}",
        f"/v1/invoices/{invoice.id}/lines",
        f"/v1/billing/credit_grants?customer={customer}",
        f"/v1/billing/credit_balance_summary?customer={customer}&filter[type]=credit_grant&filter[credit_grant]={grant.id}",
        f"/v1/billing/credit_balance_transactions?customer={customer}",
        "/v1/test_helpers/test_clocks",
    ]
    found: dict[str, list[dict[str, Any]]] = {}
    for path in gets:
        response = httpx.get(base + path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        _collect(response.json(), found)
    posts = [
        ("/v1/billing/meter_events", f"event_name=t.compute&payload[stripe_customer_id]={customer}&payload[value]=1"),
        ("/v1/invoices/create_preview", f"customer={customer}&subscription={sub.id}"),
    ]
    for path, body in posts:
        response = httpx.post(
            base + path, content=body, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 200, (path, response.text)
        _collect(response.json(), found)
    for path in (
        f"/v1/subscription_items/{item.id}",
        f"/v1/test_helpers/test_clocks/{spare_clock}",
        f"/v1/customers/{spare_customer}",
    ):
        response = httpx.delete(base + path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        _collect(response.json(), found)

    expected_types = {
        "customer",
        "payment_method",
        "product",
        "price",
        "billing.meter",
        "billing.meter_event",
        "billing.meter_event_summary",
        "subscription",
        "subscription_item",
        "invoice",
        "line_item",
        "billing.credit_grant",
        "billing.credit_balance_summary",
        "billing.credit_balance_transaction",
        "test_helpers.test_clock",
        "deleted_subscription_item",
        "deleted_test_helpers.test_clock",
        "deleted_customer",
    }
    assert expected_types <= set(found)
    fixture_keys = _fixture_keys()
    for kind, objects in found.items():
        for obj in objects:
            keys = set(obj)
            allowed_missing = OPTIONAL_KEYS.get(kind, set())
            assert keys - allowed_missing <= fixture_keys[kind], (kind, sorted(keys - fixture_keys[kind]))
            assert fixture_keys[kind] <= keys, (kind, sorted(fixture_keys[kind] - keys))
    assert any("threshold_reason" in obj for obj in found["invoice"])
