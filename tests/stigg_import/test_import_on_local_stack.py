"""The Stigg import end to end: the template's state machine on moto, Stigg and Stripe emulators over HTTP, and
Stigg's state read back through `stigg-api-client`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stripe
from billmig.adapters.stigg_graphql import StiggGraphQLTarget
from billmig_cli import stigg_import as runner
from billmig_local.lambda_bridge import LambdaFault
from billmig_local.stack import LocalStack
from import_world import GUIDE, Write, run_import, subscription_entitlements, without_comments
from stigg import Stigg
from stigg.client import StiggClient


def active_plans(stigg: StiggClient, customer_id: str, resource_id: str | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"customerId": customer_id}
    if resource_id:
        query["resourceId"] = resource_id
    result = stigg.request(Stigg.query.get_active_subscriptions_list, {"input": query})
    return {s.plan.plan_id: s for s in result.get_active_subscriptions}


def test_the_guides_own_examples_import(aws: LocalStack, stigg: StiggClient, tmp_path: Path) -> None:
    files = runner.ImportFiles()
    for name in ("customers.json", "subscriptions.json", "usage.json"):
        (tmp_path / name).write_text(without_comments((GUIDE / name).read_text()))
    files = runner.ImportFiles(
        customers=tmp_path / "customers.json",
        subscriptions=[tmp_path / "subscriptions.json"],
        usage=tmp_path / "usage.json",
    )
    _, report = run_import(files, "guide-examples", tmp_path)
    assert report["totals"]["customers"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    assert report["totals"]["subscriptions"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    assert report["totals"]["usage"] == {"created": 0, "updated": 1, "skipped": 0, "failed": 0}
    customer = stigg.request(
        Stigg.query.get_customer_by_id, {"input": {"customerId": "lorem-ipsum"}}
    ).get_customer_by_ref_id
    assert (customer.email, customer.name, customer.billing_id) == (
        "john@example.com",
        "Lorem-ipsum",
        "cus_MvdQq1bVD1BQHe",
    )
    assert customer.metadata == {"isTest": "true"}
    assert "plan-free" in active_plans(stigg, "lorem-ipsum", "site-1")


def _customers(prefix: str, n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"customerId": f"{prefix}-{i}", "email": f"{prefix}-{i}@example.com", "name": f"{prefix} {i}", **extra}
        for i in range(n)
    ]


def test_free_and_custom_plans_with_entitlements_and_add_ons_and_usage_twice(
    aws: LocalStack, stigg: StiggClient, write: Write, tmp_path: Path
) -> None:
    customers = write("customers.json", "customers", _customers("cust", 3))
    free = write("free-subscriptions.json", "subscriptions", [{"customerId": "cust-0", "planId": "plan-free"}])
    custom = write(
        "custom-subscriptions.json",
        "subscriptions",
        [
            {
                "customerId": "cust-1",
                "planId": "plan-enterprise",
                "startDate": "2026-03-01T00:00:00Z",
                "subscriptionEntitlements": [{"featureId": "feature-api-calls", "usageLimit": 50000}],
                "addons": [{"addonId": "addon-extra-seats", "quantity": 3}],
                "additionalMetaData": {"migratedFrom": "files"},
            }
        ],
    )
    usage = write(
        "usage.json",
        "usages",
        [
            {"customerId": "cust-0", "featureId": "feature-api-calls", "usage": 1200},
            {"customerId": "cust-1", "featureId": "feature-compute-minutes", "usage": 42.5},
        ],
    )
    files = runner.ImportFiles(customers=customers, subscriptions=[free, custom], usage=usage)
    _, first = run_import(files, "plans-1", tmp_path)
    assert first["totals"]["customers"]["created"] == 3
    assert first["totals"]["subscriptions"] == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    assert first["totals"]["usage"] == {"created": 0, "updated": 2, "skipped": 0, "failed": 0}
    _, second = run_import(files, "plans-2", tmp_path)
    assert second["totals"]["customers"] == {"created": 0, "updated": 3, "skipped": 0, "failed": 0}
    assert second["totals"]["subscriptions"] == {"created": 0, "updated": 2, "skipped": 0, "failed": 0}

    assert set(active_plans(stigg, "cust-0")) == {"plan-free"}
    enterprise = active_plans(stigg, "cust-1")["plan-enterprise"]
    assert enterprise.start_date.isoformat().startswith("2026-03-01")
    assert [(a.addon.addon_id, a.quantity) for a in enterprise.addons] == [("addon-extra-seats", 3)]
    assert subscription_entitlements(stigg, enterprise.subscription_id) == {"feature-api-calls": 50000}
    # SET twice: Stigg's own reply to the second import still gives the file's values, not twice them.
    usage_details = {row["record"]: row["detail"] for row in second["rows"] if row["entity"] == "usage"}
    assert usage_details == {
        "cust-0/-/feature-api-calls": "current usage 1200",
        "cust-1/-/feature-compute-minutes": "current usage 42.5",
    }


def test_the_updated_at_rule_skips_a_customer_stigg_has_newer(
    aws: LocalStack, stigg: StiggClient, write: Write, tmp_path: Path
) -> None:
    fresh = write("fresh.json", "customers", [{"customerId": "kept-1", "email": "new@example.com"}])
    run_import(runner.ImportFiles(customers=fresh), "updated-at-1", tmp_path)
    stale = write(
        "stale.json",
        "customers",
        [{"customerId": "kept-1", "email": "old@example.com", "updatedAt": "2020-01-01T00:00:00Z"}],
    )
    _, report = run_import(runner.ImportFiles(customers=stale), "updated-at-2", tmp_path)
    assert report["totals"]["customers"] == {"created": 0, "updated": 0, "skipped": 1, "failed": 0}
    customer = StiggGraphQLTarget(stigg).find_customer("kept-1")
    assert customer is not None
    assert customer.email == "new@example.com"


PAST = 1_767_225_600  # 2026-01-01T00:00:00Z


def stripe_paid_customer(client: stripe.StripeClient, name: str) -> tuple[str, str, int]:
    """A Stripe customer with a card, on a test clock in the past, subscribed to a licensed monthly plan."""
    c = client.v1
    clock = c.test_helpers.test_clocks.create(params={"frozen_time": PAST}).id
    customer = c.customers.create(
        params={
            "test_clock": clock,
            "email": f"{name}@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    ).id
    product = c.products.create(params={"name": f"Growth plan ({name})"}).id
    price = c.prices.create(
        params={"product": product, "currency": "usd", "unit_amount": 9900, "recurring": {"interval": "month"}}
    ).id
    subscription = c.subscriptions.create(params={"customer": customer, "items": [{"price": price}]})
    return customer, subscription.id, subscription.start_date


def paid_files(write: Write, name: str, customer: str, subscription: str, start: int) -> runner.ImportFiles:
    start_iso = datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")
    customers = write(
        f"{name}-customers.json",
        "customers",
        [
            {
                "customerId": name,
                "email": f"{name}@example.com",
                "billingId": customer,
                "paymentMethodId": "pm_card_visa",
            }
        ],
    )
    paid = write(
        f"{name}-paid.json",
        "subscriptions",
        [
            {
                "customerId": name,
                "planId": "plan-growth",
                "billingId": subscription,
                "billingPeriod": "MONTHLY",
                "startDate": start_iso,
            }
        ],
    )
    return runner.ImportFiles(customers=customers, subscriptions=[paid])


def test_a_paid_plan_is_backdated_in_stigg_and_its_stripe_subscription_cancelled_without_proration(
    aws: LocalStack, stigg: StiggClient, stripe_client: stripe.StripeClient, write: Write, tmp_path: Path
) -> None:
    customer, subscription, start = stripe_paid_customer(stripe_client, "paid-1")
    invoices_before = [i.id for i in stripe_client.v1.invoices.list(params={"subscription": subscription}).data]
    _, report = run_import(
        paid_files(write, "paid-1", customer, subscription, start), "paid-1", tmp_path, ("plan-growth",)
    )

    assert report["totals"]["paid_subscriptions"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    (row,) = [r for r in report["rows"] if r["entity"] == "paid_subscriptions"]
    assert (row["stripe_subscription_id"], row["stripe_outcome"]) == (subscription, "cancelled")
    growth = active_plans(stigg, "paid-1")["plan-growth"]
    assert growth.start_date == datetime.fromtimestamp(start, UTC)
    assert growth.additional_meta_data["migratedFrom"] == subscription

    cancelled = stripe_client.v1.subscriptions.retrieve(subscription)
    assert cancelled.status == "canceled"
    invoices_after = stripe_client.v1.invoices.list(params={"subscription": subscription}).data
    assert [i.id for i in invoices_after] == invoices_before, "cancelling made an invoice (proration or final)"


def test_a_crash_after_provisioning_resumes_at_the_stripe_cancel_and_never_provisions_twice(
    aws: LocalStack,
    stigg: StiggClient,
    stripe_client: stripe.StripeClient,
    write: Write,
    tmp_path: Path,
    lambda_faults: list[Any],
    stigg_requests: Any,
) -> None:
    customer, subscription, start = stripe_paid_customer(stripe_client, "paid-2")
    files = paid_files(write, "paid-2", customer, subscription, start)
    provisions_before = stigg_requests("provisionSubscription")
    # The provision succeeds in Stigg, then the function dies before reporting; the Stripe cancel then fails for good.
    lambda_faults.append(LambdaFault(function="stigg-provision-paid", error="VendorUnavailable", when="after"))
    lambda_faults.append(LambdaFault(function="stripe-cancel-subscription", error="VendorRejected", times=1))
    _, first = run_import(files, "paid-2", tmp_path, ("plan-growth",))
    assert first["totals"]["paid_subscriptions"]["failed"] == 1
    assert stripe_client.v1.subscriptions.retrieve(subscription).status == "active"

    _, second = run_import(files, "paid-2", tmp_path, ("plan-growth",))
    assert second["totals"]["paid_subscriptions"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    assert stripe_client.v1.subscriptions.retrieve(subscription).status == "canceled"
    assert stigg_requests("provisionSubscription") - provisions_before == 1
    assert list(active_plans(stigg, "paid-2")) == ["plan-growth"]


def test_a_paid_plan_without_payment_method_is_refused_before_any_call(
    aws: LocalStack, write: Write, tmp_path: Path, stigg_requests: Any
) -> None:
    customers = write("nopm-customers.json", "customers", [{"customerId": "nopm-1"}])
    paid = write(
        "nopm-paid.json",
        "subscriptions",
        [{"customerId": "nopm-1", "planId": "plan-growth", "billingId": "sub_X1", "startDate": "2026-01-01T00:00:00Z"}],
    )
    before = stigg_requests("importCustomersBulk")
    started = runner.start_import(
        runner.ImportFiles(customers=customers, subscriptions=[paid]),
        import_id="nopm",
        paid_plan_ids=("plan-growth",),
        stack_name="billmig",
    )
    result = runner.follow(started, stack_name="billmig", timeout=120)
    assert result["status"] == "FAILED"
    assert "nopm-paid.json record 0 (nopm-1/-/plan-growth) field customerId: paid plan 'plan-growth' but customer" in (
        runner.failure_of(result)
    )
    assert stigg_requests("importCustomersBulk") == before
