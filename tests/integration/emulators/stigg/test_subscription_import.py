"""importSubscriptionsBulk through the SDK: free and custom plans, resources, dates, entitlements, add-ons, and rows
the service skips (unknown customer or plan) without failing the batch."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

from stigg import Stigg
from stigg_world import (
    World,
    create_free_plan,
    create_product,
    import_customers,
    import_subscriptions,
    iso,
    subscription_details,
    unique,
)


def details(world: World, subscription_id: str):
    return world.client.request(subscription_details(), {"input": {"subscriptionId": subscription_id}}).get_subscription


def task(world: World, task_id: str) -> dict:
    with urllib.request.urlopen(f"{world.emulator.url}/_emulator/stigg/tasks/{task_id}") as response:
        return json.loads(response.read())


def test_free_plan_backdated_with_metadata(world: World) -> None:
    cid, sid = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    start = (world.clock.now_datetime() - timedelta(days=40)).replace(microsecond=0)
    import_subscriptions(
        world.client,
        {
            "customerId": cid,
            "planId": "plan-free",
            "subscriptionId": sid,
            "startDate": iso(start),
            "additionalMetaData": {"stripeSubscription": "sub_1"},
        },
    )
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    [subscription] = active.get_active_subscriptions
    assert (subscription.subscription_id, subscription.status, subscription.plan.ref_id) == (sid, "ACTIVE", "plan-free")
    assert subscription.start_date == start  # whole seconds: sgqlc reads ".123Z" as 123 microseconds
    assert subscription.additional_meta_data == {"stripeSubscription": "sub_1"}
    assert subscription.pricing_type == "FREE"


def test_custom_plan_with_entitlements_and_addons(world: World) -> None:
    cid, sid = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    import_subscriptions(
        world.client,
        {
            "customerId": cid,
            "planId": "plan-enterprise",
            "subscriptionId": sid,
            "subscriptionEntitlements": [{"featureId": "feature-seats", "usageLimit": 25}],
            "entitlements": [
                {"feature": {"featureId": "feature-api-calls", "usageLimit": 50000, "resetPeriod": "MONTH"}}
            ],
            "addons": [{"addonId": "addon-extra-seats", "quantity": 3}],
        },
    )
    found = details(world, sid)
    assert found.pricing_type == "CUSTOM"
    limits = {e.feature_id: e.usage_limit for e in found.subscription_entitlements}
    assert limits == {"feature-seats": 25, "feature-api-calls": 50000}
    assert [(a.addon_id, a.quantity) for a in found.addons] == [("addon-extra-seats", 3)]


def test_end_date_ends_the_subscription(world: World) -> None:
    cid, sid = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    now = world.clock.now_datetime()
    import_subscriptions(
        world.client,
        {
            "customerId": cid,
            "planId": "plan-free",
            "subscriptionId": sid,
            "startDate": iso(now - timedelta(days=60)),
            "endDate": iso(now - timedelta(days=1)),
        },
    )
    assert details(world, sid).status == "EXPIRED"
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    assert active.get_active_subscriptions == []


def test_resource_ids_allow_several_subscriptions_to_a_multi_subscription_product(world: World) -> None:
    product_ref, plan_ref = unique("product-sites"), unique("plan-site")
    create_free_plan(world.client, create_product(world.client, product_ref, multiple_subscriptions=True), plan_ref)
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    task_id = import_subscriptions(
        world.client,
        {"customerId": cid, "planId": plan_ref, "resourceId": "site-1", "subscriptionId": unique("sub")},
        {"customerId": cid, "planId": plan_ref, "resourceId": "site-2", "subscriptionId": unique("sub")},
        {"customerId": cid, "planId": plan_ref, "subscriptionId": unique("sub")},  # no resource: skipped
    )
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    assert sorted(s.resource.resource_id for s in active.get_active_subscriptions) == ["site-1", "site-2"]
    only_site_2 = world.client.request(
        Stigg.query.get_active_subscriptions, {"input": {"customerId": cid, "resourceId": "site-2"}}
    )
    assert [s.resource.resource_id for s in only_site_2.get_active_subscriptions] == ["site-2"]
    assert [row["index"] for row in task(world, task_id)["skipped"]] == [2]


def test_rows_for_unknown_customers_or_plans_are_skipped_and_the_rest_imported(world: World) -> None:
    cid, good = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    task_id = import_subscriptions(
        world.client,
        {"customerId": unique("nobody"), "planId": "plan-free", "subscriptionId": unique("sub")},
        {"customerId": cid, "planId": "plan-nonexistent", "subscriptionId": unique("sub")},
        {"customerId": cid, "planId": "plan-free", "subscriptionId": good},
    )
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    assert [s.subscription_id for s in active.get_active_subscriptions] == [good]
    skipped = task(world, task_id)["skipped"]
    assert [(row["index"], row["code"]) for row in skipped] == [(0, "CustomerNotFound"), (1, "PlanNotFound")]


def test_reimport_upserts_by_subscription_id_and_honours_updated_at(world: World) -> None:
    cid, sid = unique("cus"), unique("sub")
    import_customers(world.client, {"customerId": cid})
    row = {"customerId": cid, "planId": "plan-free", "subscriptionId": sid, "additionalMetaData": {"v": "1"}}
    import_subscriptions(world.client, row)
    import_subscriptions(world.client, {**row, "additionalMetaData": {"v": "2"}})
    assert details(world, sid).additional_meta_data == {"v": "2"}
    stale = iso(world.clock.now_datetime() - timedelta(days=1))
    import_subscriptions(world.client, {**row, "additionalMetaData": {"v": "3"}, "updatedAt": stale})
    assert details(world, sid).additional_meta_data == {"v": "2"}
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    assert len(active.get_active_subscriptions) == 1


def test_rows_without_subscription_id_update_the_customers_subscription_to_that_plan(world: World) -> None:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    row = {"customerId": cid, "planId": "plan-free", "additionalMetaData": {"run": "1"}}
    import_subscriptions(world.client, row)
    import_subscriptions(world.client, {**row, "additionalMetaData": {"run": "2"}})  # a re-run of the same import
    active = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": cid}})
    [only] = active.get_active_subscriptions
    assert only.additional_meta_data == {"run": "2"}
