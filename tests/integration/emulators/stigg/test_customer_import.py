"""importCustomersBulk through the SDK: upsert by customer id, metadata, payment method, the updatedAt skip rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sgqlc.operation import GraphQLErrors
from stigg import Stigg
from stigg_world import World, error_codes, import_customers, iso, unique


def customer(world: World, customer_id: str):
    return world.client.request(
        Stigg.query.get_customer_by_id, {"input": {"customerId": customer_id}}
    ).get_customer_by_ref_id


def test_import_creates_customers_with_every_field(world: World) -> None:
    cid = unique("cus")
    task_id = import_customers(
        world.client,
        {
            "customerId": cid,
            "email": "ada@example.com",
            "name": "Ada",
            "billingId": "cus_stripe_1",
            "paymentMethodId": "pm_1",
            "additionalMetaData": {"migratedFrom": "stripe"},
        },
    )
    assert task_id
    found = customer(world, cid)
    assert (found.customer_id, found.ref_id, found.email, found.name) == (cid, cid, "ada@example.com", "Ada")
    assert found.billing_id == "cus_stripe_1"
    assert found.has_payment_method is True
    assert found.additional_meta_data == {"migratedFrom": "stripe"}
    assert found.subscriptions == []


def test_import_is_an_upsert_by_customer_id(world: World) -> None:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid, "name": "Old", "additionalMetaData": {"a": "1"}})
    first_id = customer(world, cid).id
    import_customers(world.client, {"customerId": cid, "name": "New", "email": "new@example.com"})
    found = customer(world, cid)
    assert found.id == first_id
    assert (found.name, found.email) == ("New", "new@example.com")
    assert found.additional_meta_data == {"a": "1"}  # omitted metadata is kept


def test_customer_updated_after_updated_at_is_skipped(world: World) -> None:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid, "name": "Current"})
    now = world.clock.now_datetime()
    import_customers(world.client, {"customerId": cid, "name": "Stale", "updatedAt": iso(now - timedelta(days=1))})
    assert customer(world, cid).name == "Current"
    import_customers(world.client, {"customerId": cid, "name": "Fresh", "updatedAt": iso(now + timedelta(days=1))})
    assert customer(world, cid).name == "Fresh"


def test_unknown_customer_reads_as_null(world: World) -> None:
    reply = world.client.request(
        Stigg.query.get_customer_by_id, {"input": {"customerId": unique("nobody")}}, raw_response=True
    )
    assert reply["data"] == {"getCustomerByRefId": None}


def test_more_customers_than_a_call_allows_are_refused(world: World) -> None:
    world.env.limits.configure({"import_customers_per_call": 2})
    try:
        with pytest.raises(GraphQLErrors) as excinfo:
            import_customers(world.client, *({"customerId": unique("cus")} for _ in range(3)))
        assert error_codes(excinfo) == ["BadUserInput"]
    finally:
        world.env.limits.configure({"import_customers_per_call": 1000})
