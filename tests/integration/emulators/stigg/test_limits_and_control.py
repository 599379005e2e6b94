"""Stigg's limits on the emulator clock (429 without Retry-After), the control plane, the world clock, restarts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from billmig_local.clock import WorldClock
from billmig_local.emulators.stigg.seed import seed_catalogue
from sgqlc.operation import GraphQLErrors
from stigg import Stigg
from stigg_world import (
    JAN_1,
    World,
    error_codes,
    import_customers,
    import_subscriptions,
    iso,
    report_usage,
    start_world,
    unique,
)


@pytest.fixture
def own_world(tmp_path: Path) -> Iterator[World]:
    """A fresh emulator on a clock in January 2030: these tests move time and change limits."""
    world = start_world(tmp_path, WorldClock(start_at=JAN_1.timestamp()))
    seed_catalogue(world.client)
    try:
        yield world
    finally:
        world.stop()


def set_limits(world: World, **limits: int) -> None:
    response = httpx.post(f"{world.emulator.url}/_emulator/stigg/limits", json=limits)
    assert response.status_code == 200, response.text


def provision_raw(world: World, customer_id: str, plan_id: str = "plan-free") -> dict:
    variables = {"input": {"customerId": customer_id, "planId": plan_id}}
    return world.client.request(Stigg.mutation.provision_subscription, variables, raw_response=True)


def graphql_posts(world: World) -> int:
    log = httpx.get(f"{world.emulator.url}/_emulator/requests").json()
    return sum(1 for entry in log if entry["method"] == "POST" and entry["path"] == "/graphql")


def test_provision_limit_per_customer_answers_429_until_the_minute_passes(own_world: World) -> None:
    world = own_world
    set_limits(world, provision_per_minute_per_customer=2)
    cid, other = unique("cus"), unique("cus")
    import_customers(world.client, {"customerId": cid}, {"customerId": other})
    assert provision_raw(world, cid)["data"]["provision_subscription"]["status"] == "SUCCESS"
    assert "errors" in provision_raw(world, cid)  # already subscribed: refused, but it counts
    posts_before = graphql_posts(world)
    limited = provision_raw(world, cid)
    assert limited["status"] == 429
    assert [e["extensions"]["code"] for e in limited["errors"]] == ["RateLimitExceeded"]
    assert "retry-after" not in {k.lower() for k in limited["headers"]}
    assert graphql_posts(world) == posts_before + 1  # the SDK did not retry the 429
    assert provision_raw(world, other)["data"]["provision_subscription"]["status"] == "SUCCESS"
    world.clock.advance(61)
    again = provision_raw(world, cid)
    assert [e["extensions"]["code"] for e in again["errors"]] == ["DuplicatedEntityNotAllowed"]


def test_provision_limit_across_customers(own_world: World) -> None:
    world = own_world
    set_limits(world, provision_per_minute=3)
    customers = [unique("cus") for _ in range(4)]
    import_customers(world.client, *({"customerId": c} for c in customers))
    statuses = [provision_raw(world, c).get("status", 200) for c in customers]
    assert statuses == [200, 200, 200, 429]


def test_import_rate_limit_and_reset(own_world: World) -> None:
    world = own_world
    set_limits(world, import_customers_per_minute=1)
    import_customers(world.client, {"customerId": unique("cus")})
    with pytest.raises(GraphQLErrors) as excinfo:
        import_customers(world.client, {"customerId": unique("cus")})
    assert error_codes(excinfo) == ["RateLimitExceeded"]
    assert httpx.delete(f"{world.emulator.url}/_emulator/stigg/limits").json()["import_customers_per_minute"] == 250
    import_customers(world.client, {"customerId": unique("cus")})


def test_injected_fault_then_recovery_and_the_request_log(own_world: World) -> None:
    world = own_world
    fault = {"path": "^/graphql$", "status": 503, "times": 1, "message": "maintenance"}
    assert httpx.post(f"{world.emulator.url}/_emulator/faults", json=fault).status_code == 200
    cid = unique("cus")
    with pytest.raises(GraphQLErrors) as excinfo:
        import_customers(world.client, {"customerId": cid})
    assert excinfo.value.errors[0]["message"] == "maintenance"
    import_customers(world.client, {"customerId": cid})
    log = httpx.get(f"{world.emulator.url}/_emulator/requests").json()
    imports = [e for e in log if cid in e["body"]]
    assert [(e["status"], e["injected"]) for e in imports] == [(503, True), (200, False)]
    assert imports[-1]["headers"]["x-api-key"] == "test-key"


def test_subscription_status_and_usage_periods_follow_the_world_clock(own_world: World) -> None:
    world = own_world
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    start = JAN_1 + timedelta(days=2)
    import_subscriptions(world.client, {"customerId": cid, "planId": "plan-free", "startDate": iso(start)})
    assert (
        world.client.request(
            Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}}
        ).get_active_subscriptions
        == []
    )
    world.clock.set((start + timedelta(hours=1)).timestamp())
    [active] = world.client.request(
        Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}}
    ).get_active_subscriptions
    assert active.status == "ACTIVE"
    usage = {"customerId": cid, "featureId": "feature-api-calls", "value": 40, "updateBehavior": "DELTA"}
    [first] = report_usage(world.client, usage)
    assert (first.current_usage, first.usage_period_start, first.usage_period_end) == (
        40,
        start,
        start + timedelta(days=31),
    )
    world.clock.set((start + timedelta(days=31, hours=1)).timestamp())
    [next_period] = report_usage(world.client, usage)
    assert (next_period.current_usage, next_period.usage_period_start) == (40, start + timedelta(days=31))


def test_idempotency_keys_expire_after_seven_days(own_world: World) -> None:
    world = own_world
    cid, key = unique("cus"), unique("key")
    import_customers(world.client, {"customerId": cid})
    usage = {"customerId": cid, "featureId": "feature-compute-minutes", "value": 5, "idempotencyKey": key}
    assert report_usage(world.client, usage)[0].current_usage == 5
    world.clock.advance(6 * 86_400)
    assert report_usage(world.client, usage)[0].current_usage == 5
    world.clock.advance(2 * 86_400)
    assert report_usage(world.client, usage)[0].current_usage == 10


def test_state_survives_a_restart(tmp_path: Path) -> None:
    clock = WorldClock(start_at=JAN_1.timestamp())
    world = start_world(tmp_path, clock)
    cid, sid, key = unique("cus"), unique("sub"), unique("key")
    try:
        seed_catalogue(world.client)
        import_customers(world.client, {"customerId": cid, "name": "Kept"})
        import_subscriptions(world.client, {"customerId": cid, "planId": "plan-free", "subscriptionId": sid})
        usage = {"customerId": cid, "featureId": "feature-api-calls", "value": 9, "idempotencyKey": key}
        report_usage(world.client, usage)
    finally:
        world.stop()
    restarted = start_world(tmp_path, clock)
    try:
        found = restarted.client.request(Stigg.query.get_customer_by_id, {"input": {"customerId": cid}})
        assert found.get_customer_by_ref_id.name == "Kept"
        assert [s.subscription_id for s in found.get_customer_by_ref_id.subscriptions] == [sid]
        assert report_usage(restarted.client, usage)[0].current_usage == 9  # the key is remembered too
        assert seed_catalogue(restarted.client) == {"products": [], "features": [], "plans": [], "addons": []}
    finally:
        restarted.stop()


def test_delayed_subscription_import_applies_once_the_clock_moves(own_world: World) -> None:
    world = own_world
    set_limits(world, subscription_import_delay_seconds=30)
    cid, sid = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    task_id = import_subscriptions(world.client, {"customerId": cid, "planId": "plan-free", "subscriptionId": sid})
    read = {"input": {"customerId": cid}}
    assert world.client.request(Stigg.query.get_active_subscriptions, read).get_active_subscriptions == []
    task_url = f"{world.emulator.url}/_emulator/stigg/tasks/{task_id}"
    assert httpx.get(task_url).json()["status"] == "PENDING"
    world.clock.advance(31)
    [active] = world.client.request(Stigg.query.get_active_subscriptions, read).get_active_subscriptions
    assert active.subscription_id == sid
    report = httpx.get(task_url).json()
    assert {k: report[k] for k in ("kind", "status", "imported", "skipped", "rowCount", "customersCount")} == {
        "kind": "subscriptions",
        "status": "COMPLETED",
        "imported": [sid],
        "skipped": [],
        "rowCount": 1,
        "customersCount": 1,
    }
    assert report["completedAt"] - report["createdAt"] >= 30
