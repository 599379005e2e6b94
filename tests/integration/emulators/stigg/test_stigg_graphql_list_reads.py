"""The Stigg adapter's paged reads (`customers_by_id`, `subscriptions_by_id`, `live_subscriptions_of`) against the
emulator over HTTP: a chunk read back in a few list calls, and each failure typed like every other Stigg call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from billmig.adapters.stigg_graphql import PAGE_SIZE, StiggGraphQLTarget
from billmig.errors import VendorRejected, VendorThrottled, VendorUnavailable
from billmig_local.clock import WorldClock
from billmig_local.emulators.stigg.seed import seed_catalogue
from stigg_world import (
    API_KEY,
    JAN_1,
    World,
    create_free_plan,
    create_product,
    import_customers,
    import_subscriptions,
    start_world,
    unique,
)


def target(world: World) -> StiggGraphQLTarget:
    return StiggGraphQLTarget.connect(API_KEY, world.graphql_url)


def graphql_calls(world: World) -> int:
    log = httpx.get(f"{world.emulator.url}/_emulator/requests").json()
    return sum(1 for entry in log if entry["method"] == "POST" and entry["path"] == "/graphql")


def forget_calls(world: World) -> None:
    assert httpx.delete(f"{world.emulator.url}/_emulator/requests").status_code == 200


@pytest.fixture(scope="module")
def chunk(world: World) -> list[str]:
    """120 customers (three id groups of at most 50), all but the last 10 with a free subscription."""
    ids = [unique("read") for _ in range(120)]
    import_customers(world.client, *({"customerId": c, "name": f"Name {c}", "paymentMethodId": "pm_1"} for c in ids))
    import_subscriptions(
        world.client,
        *({"customerId": c, "planId": "plan-free", "subscriptionId": f"sub-{c}"} for c in ids[:110]),
    )
    return ids


def test_customers_by_id_reads_a_chunk_in_one_call_per_fifty_ids(world: World, chunk: list[str]) -> None:
    missing = [unique("absent") for _ in range(3)]
    forget_calls(world)
    found = target(world).customers_by_id([*chunk, *missing, chunk[0]])
    assert graphql_calls(world) == 3  # 123 distinct ids: 50 + 50 + 23
    assert sorted(found) == sorted(chunk)
    customer = found[chunk[5]]
    assert (customer.customer_id, customer.name, customer.has_payment_method) == (chunk[5], f"Name {chunk[5]}", True)
    assert customer.created_at is not None
    assert target(world).customers_by_id([]) == {}


def test_subscriptions_by_id_answers_only_the_subscriptions_stigg_has(world: World, chunk: list[str]) -> None:
    wanted = [f"sub-{c}" for c in chunk]  # the last 10 were never imported
    forget_calls(world)
    found = target(world).subscriptions_by_id(wanted)
    assert graphql_calls(world) == 3
    assert sorted(found) == sorted(wanted[:110])
    one = found[f"sub-{chunk[0]}"]
    assert (one.plan_id, one.status, one.resource_id) == ("plan-free", "ACTIVE", None)


def test_live_subscriptions_of_customers_keys_every_customer_asked(world: World, chunk: list[str]) -> None:
    forget_calls(world)
    found = target(world).live_subscriptions_of(chunk)
    assert graphql_calls(world) == 3
    assert set(found) == set(chunk)
    assert all([s.subscription_id for s in found[c]] == [f"sub-{c}"] for c in chunk[:110])
    assert all(found[c] == [] for c in chunk[110:])


def test_live_subscriptions_of_follows_the_next_page_when_customers_have_several(world: World) -> None:
    """30 customers with two resource-scoped subscriptions each: 60 matches, two pages for one id group."""
    product_id = create_product(world.client, unique("product-multi"), multiple_subscriptions=True)
    plan_id = unique("plan-seats")
    create_free_plan(world.client, product_id, plan_id)
    ids = [unique("multi") for _ in range(30)]
    import_customers(world.client, *({"customerId": c} for c in ids))
    rows = [{"customerId": c, "planId": plan_id, "resourceId": f"site-{n}"} for c in ids for n in (1, 2)]
    import_subscriptions(world.client, *rows)
    assert PAGE_SIZE < len(rows) <= 2 * PAGE_SIZE
    forget_calls(world)
    found = target(world).live_subscriptions_of(ids)
    assert graphql_calls(world) == 2
    assert all(sorted(s.resource_id or "" for s in found[c]) == ["site-1", "site-2"] for c in ids)


@pytest.fixture
def own_world(tmp_path: Path) -> Iterator[World]:
    world = start_world(tmp_path, WorldClock(start_at=JAN_1.timestamp()))
    seed_catalogue(world.client)
    try:
        yield world
    finally:
        world.stop()


def set_limits(world: World, **limits: int) -> None:
    response = httpx.post(f"{world.emulator.url}/_emulator/stigg/limits", json=limits)
    assert response.status_code == 200, response.text


def test_list_reads_fail_typed_throttled_unavailable_rejected(own_world: World) -> None:
    world = own_world
    ids = [unique("cus") for _ in range(3)]
    import_customers(world.client, *({"customerId": c} for c in ids))
    set_limits(world, list_customers_per_minute=0)
    with pytest.raises(VendorThrottled, match="RateLimitExceeded"):
        target(world).customers_by_id(ids)
    fault = {"path": "/graphql", "status": 503, "times": 1}
    assert httpx.post(f"{world.emulator.url}/_emulator/faults", json=fault).status_code == 200
    with pytest.raises(VendorUnavailable):
        target(world).subscriptions_by_id(["sub-1"])
    set_limits(world, list_page_size_max=PAGE_SIZE - 1)
    with pytest.raises(VendorRejected, match="max allowed value"):
        target(world).live_subscriptions_of(ids)
