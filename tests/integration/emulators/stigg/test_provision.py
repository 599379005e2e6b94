"""provisionSubscriptionV2 / provisionSubscription, cancelSubscription and getSubscription through the SDK."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sgqlc.types
from sgqlc.operation import GraphQLErrors, Operation
from stigg import Stigg
from stigg.generated import schema as sdk
from stigg_world import (
    World,
    create_free_plan,
    create_product,
    error_codes,
    import_customers,
    iso,
    unique,
)


def provision(world: World, **fields):
    return world.client.request(Stigg.mutation.provision_subscription, {"input": fields}).provision_subscription


def active(world: World, customer_id: str, **extra):
    reply = world.client.request(Stigg.query.get_active_subscriptions, {"input": {"customerId": customer_id, **extra}})
    return reply.get_active_subscriptions


def paying_customer(world: World) -> str:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid, "billingId": "cus_stripe", "paymentMethodId": "pm_card"})
    return cid


def test_backdated_paid_plan_for_a_customer_with_a_payment_method(world: World) -> None:
    cid, sid = paying_customer(world), unique("sub")
    start = (world.clock.now_datetime() - timedelta(days=17)).replace(hour=0, minute=0, second=0, microsecond=0)
    result = provision(
        world,
        customerId=cid,
        planId="plan-growth",
        subscriptionId=sid,
        billingPeriod="MONTHLY",
        startDate=iso(start),
        billingInformation={"isBackdated": True, "metadata": {"migratedFrom": "sub_123"}},
        additionalMetaData={"source": "stripe"},
    )
    assert result.status == "SUCCESS"
    assert (result.subscription.subscription_id, result.subscription.status) == (sid, "ACTIVE")
    assert result.subscription.pricing_type == "PAID"
    assert result.subscription.total_price.total.amount == 99.0
    [found] = active(world, cid)
    assert (found.subscription_id, found.start_date, found.plan.ref_id) == (sid, start, "plan-growth")
    assert found.additional_meta_data == {"source": "stripe"}
    period_end = found.current_billing_period_end  # one month after the backdated start
    assert world.clock.now_datetime() < period_end <= start + timedelta(days=31)
    assert period_end.time() == start.time()
    # Stigg's schema has no field that reads billingInformation back; the stored record shows it was kept.
    stored = world.env.store.get("subscription", sid)
    assert stored["billingInformation"] == {"isBackdated": True, "metadata": {"migratedFrom": "sub_123"}}


def test_paid_plan_without_payment_method_answers_payment_required(world: World) -> None:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    paid = {"customerId": cid, "planId": "plan-growth", "billingPeriod": "MONTHLY"}
    raw = world.client.request(Stigg.mutation.provision_subscription, {"input": paid}, raw_response=True)
    result = raw["data"]["provision_subscription"]  # raw: sgqlc renders a null subscription as an empty object
    assert (result["status"], result["subscription"]) == ("PAYMENT_REQUIRED", None)
    assert active(world, cid) == []
    invoiced = provision(world, **paid, paymentCollectionMethod="INVOICE")  # invoices need no card on file
    assert invoiced.status == "SUCCESS"
    assert [s.payment_collection_method for s in active(world, cid)] == ["INVOICE"]


def test_second_active_subscription_to_the_same_product_is_refused(world: World) -> None:
    cid, first = paying_customer(world), unique("sub")
    provision(world, customerId=cid, planId="plan-free", subscriptionId=first)
    with pytest.raises(GraphQLErrors) as excinfo:
        provision(world, customerId=cid, planId="plan-growth", billingPeriod="MONTHLY")
    assert error_codes(excinfo) == ["DuplicatedEntityNotAllowed"]
    error = excinfo.value.errors[0]
    assert first in error["message"] and "product-platform" in error["message"]
    assert error["extensions"]["subscriptionId"] == first
    assert [s.subscription_id for s in active(world, cid)] == [first]


def test_resources_of_a_multi_subscription_product_are_separate(world: World) -> None:
    product_ref, plan_ref = unique("product-sites"), unique("plan-site")
    create_free_plan(world.client, create_product(world.client, product_ref, multiple_subscriptions=True), plan_ref)
    cid = paying_customer(world)
    provision(world, customerId=cid, planId=plan_ref, resourceId="site-a")
    provision(world, customerId=cid, planId=plan_ref, resourceId="site-b")
    with pytest.raises(GraphQLErrors) as excinfo:
        provision(world, customerId=cid, planId=plan_ref, resourceId="site-a")
    assert error_codes(excinfo) == ["DuplicatedEntityNotAllowed"]
    with pytest.raises(GraphQLErrors) as no_resource:
        provision(world, customerId=cid, planId=plan_ref)
    assert error_codes(no_resource) == ["BadUserInput"]
    assert sorted(s.resource.resource_id for s in active(world, cid)) == ["site-a", "site-b"]
    assert [s.resource.resource_id for s in active(world, cid, resourceId="site-b")] == ["site-b"]


def test_unknown_customer_or_plan_is_refused(world: World) -> None:
    with pytest.raises(GraphQLErrors) as customer:
        provision(world, customerId=unique("nobody"), planId="plan-free")
    assert error_codes(customer) == ["CustomerNotFound"]
    with pytest.raises(GraphQLErrors) as plan:
        provision(world, customerId=paying_customer(world), planId="plan-missing")
    assert error_codes(plan) == ["PlanNotFound"]


def test_plain_provision_subscription_mutation(world: World) -> None:
    """The older `provisionSubscription` field, which the SDK has no operation for, sent with the SDK's schema."""
    op = Operation(
        sdk.schema.mutation_type,
        name="ProvisionSubscriptionV1",
        variables={"input": sgqlc.types.Arg(sgqlc.types.non_null(sdk.ProvisionSubscription))},
    )
    selection = op.provision_subscription(input=sgqlc.types.Variable("input"))
    selection.__fields__("id", "status")
    selection.subscription().__fields__("subscription_id", "status", "start_date")
    cid, sid = paying_customer(world), unique("sub")
    start = (world.clock.now_datetime() - timedelta(days=3)).replace(microsecond=0)
    reply = world.client.request(
        op,
        {
            "input": {
                "customerId": cid,
                "planId": "plan-growth",
                "subscriptionId": sid,
                "billingPeriod": "MONTHLY",
                "startDate": iso(start),
                "billingInformation": {"isBackdated": True},
            }
        },
    ).provision_subscription
    assert (reply.status, reply.subscription.subscription_id, reply.subscription.start_date) == ("SUCCESS", sid, start)


def test_cancel_immediately_then_provision_again(world: World) -> None:
    cid, sid = paying_customer(world), unique("sub")
    provision(world, customerId=cid, planId="plan-free", subscriptionId=sid)
    cancel = {"subscriptionRefId": sid, "subscriptionCancellationTime": "IMMEDIATE", "prorate": False}
    canceled = world.client.request(Stigg.mutation.cancel_subscription, {"input": cancel}).cancel_subscription
    assert (canceled.subscription_id, canceled.status) == (sid, "CANCELED")
    assert active(world, cid) == []
    got = world.client.request(Stigg.query.get_subscription, {"input": {"subscriptionId": sid}}).get_subscription
    assert got.status == "CANCELED" and got.cancellation_date is not None
    with pytest.raises(GraphQLErrors) as again:
        world.client.request(Stigg.mutation.cancel_subscription, {"input": cancel})
    assert error_codes(again) == ["SubscriptionAlreadyCanceledOrExpired"]
    with pytest.raises(GraphQLErrors) as reused:
        provision(world, customerId=cid, planId="plan-free", subscriptionId=sid)
    assert error_codes(reused) == ["DuplicatedEntityNotAllowed"]
    assert "already exists (CANCELED)" in reused.value.errors[0]["message"]
    assert provision(world, customerId=cid, planId="plan-growth", billingPeriod="MONTHLY").status == "SUCCESS"


def test_unknown_subscription_is_not_found(world: World) -> None:
    with pytest.raises(GraphQLErrors) as excinfo:
        world.client.request(Stigg.query.get_subscription, {"input": {"subscriptionId": unique("sub")}})
    assert error_codes(excinfo) == ["SubscriptionNotFound"]


def test_single_subscription_product_keeps_a_resource_id_but_allows_one_subscription(world: World) -> None:
    cid, sid = paying_customer(world), unique("sub")
    provision(world, customerId=cid, planId="plan-free", subscriptionId=sid, resourceId="site-1")
    assert [s.resource.resource_id for s in active(world, cid, resourceId="site-1")] == ["site-1"]
    with pytest.raises(GraphQLErrors) as excinfo:
        provision(world, customerId=cid, planId="plan-growth", billingPeriod="MONTHLY", resourceId="site-2")
    assert error_codes(excinfo) == ["DuplicatedEntityNotAllowed"]
