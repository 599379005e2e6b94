"""The Stigg import end to end: the template's state machine on moto, Stigg and Stripe emulators over HTTP, and
Stigg's state read back through `stigg-api-client`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe
from billmig.adapters.stigg_graphql import StiggGraphQLTarget
from billmig.stigg.target import StiggSubscription
from billmig_cli import stigg_import as runner
from billmig_cli.main import app
from billmig_local.lambda_bridge import LambdaFault
from billmig_local.stack import LocalStack
from billmig_local.stigg_book import generated_book
from import_world import GUIDE, Write, run_import, subscription_entitlements, without_comments
from stigg.client import StiggClient
from typer.testing import CliRunner


def active_plans(stigg: StiggClient, customer_id: str, resource_id: str | None = None) -> dict[str, StiggSubscription]:
    """Active subscriptions by plan, read with the adapter's own documents on `stigg-api-client` (the SDK's
    `get_active_subscriptions_list` spreads fragments it does not define when a subscription has entitlements)."""
    return {s.plan_id: s for s in StiggGraphQLTarget(stigg).active_subscriptions(customer_id, resource_id)}


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
    customer = StiggGraphQLTarget(stigg).find_customer("lorem-ipsum")
    assert customer is not None
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
    assert enterprise.addons == {"addon-extra-seats": 3}
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
    assert growth.metadata["migratedFrom"] == subscription

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


def test_a_book_of_a_thousand_customers_imports_and_reads_back(
    aws: LocalStack, stigg: StiggClient, write: Write, tmp_path: Path, stigg_requests: Any
) -> None:
    book = generated_book(1000)
    files = runner.ImportFiles(
        customers=write("book-customers.json", "customers", book["customers"]),
        subscriptions=[
            write("book-free.json", "subscriptions", book["free"]),
            write("book-custom.json", "subscriptions", book["custom"]),
        ],
        usage=write("book-usage.json", "usages", book["usages"]),
    )
    imports_before = stigg_requests("importCustomersBulk")
    _, report = run_import(files, "book-1000", tmp_path)
    assert report["totals"]["customers"] == {"created": 1000, "updated": 0, "skipped": 0, "failed": 0}
    assert report["totals"]["subscriptions"] == {"created": 1000, "updated": 0, "skipped": 0, "failed": 0}
    assert report["totals"]["usage"] == {"created": 0, "updated": 2000, "skipped": 0, "failed": 0}
    assert stigg_requests("importCustomersBulk") - imports_before == 1
    target = StiggGraphQLTarget(stigg)
    for i in (0, 1, 999):
        customer = target.find_customer(f"book-{i:05d}")
        assert customer is not None and customer.email == f"book-{i:05d}@example.com"
    assert set(active_plans(stigg, "book-00010")) == {"plan-enterprise"}
    assert set(active_plans(stigg, "book-00011")) == {"plan-free"}


def test_from_stripe_builds_the_same_records_and_imports_them(
    aws: LocalStack,
    stigg: StiggClient,
    stripe_client: stripe.StripeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = stripe_client.v1
    product = c.products.create(params={"name": "Platform (from-stripe test)"}).id
    meter = c.billing.meters.create(
        params={
            "display_name": "API calls (from-stripe test)",
            "event_name": "fs_api_call",
            "default_aggregation": {"formula": "sum"},
        }
    ).id
    api = c.prices.create(
        params={
            "product": product,
            "currency": "usd",
            "unit_amount": 2,
            "lookup_key": "fs_api_calls",
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter},
        }
    ).id
    growth = c.prices.create(
        params={
            "product": product,
            "currency": "usd",
            "unit_amount": 9900,
            "lookup_key": "fs_growth_monthly",
            "recurring": {"interval": "month"},
        }
    ).id
    made = {}
    for name, prices, card in (("fs-paid", [growth, api], True), ("fs-free", [api], False)):
        params: dict[str, Any] = {
            "email": f"{name}@example.com",
            "metadata": {"internal_customer_id": name},
        }
        if card:
            params |= {"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
        customer = c.customers.create(params=params).id
        subscription = c.subscriptions.create(params={"customer": customer, "items": [{"price": p} for p in prices]}).id
        for n in range(3):
            c.billing.meter_events.create(
                params={
                    "event_name": "fs_api_call",
                    "payload": {"stripe_customer_id": customer, "value": str(10 * (n + 1))},
                    "identifier": f"{name}-{n}",
                    "timestamp": int(aws.clock.now()) + n,
                }
            )
        made[name] = (customer, subscription)
    config = tmp_path / "stripe-to-stigg.json"
    config.write_text(
        json.dumps(
            {
                "prices": {
                    "fs_growth_monthly": {"plan": "plan-growth"},
                    "fs_api_calls": {"feature": "feature-api-calls"},
                },
                "paid_plans": ["plan-growth"],
                "default_plan": "plan-free",
            }
        )
    )
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_local")
    done = CliRunner().invoke(
        app,
        [
            "stigg", "import", "--from-stripe", "--config", str(config), "--import-id", "from-stripe",
            "--stripe-api-base", aws.emulators["stripe"].url, "--report-dir", str(tmp_path / "reports"),
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert set(active_plans(stigg, "fs-paid")) == {"plan-growth"}
    assert set(active_plans(stigg, "fs-free")) == {"plan-free"}
    assert c.subscriptions.retrieve(made["fs-paid"][1]).status == "canceled"
    assert c.subscriptions.retrieve(made["fs-free"][1]).status == "active"
    report = json.loads((tmp_path / "reports" / "from-stripe.json").read_text())
    usage = {r["record"]: r["detail"] for r in report["rows"] if r["entity"] == "usage"}
    assert usage == {
        "fs-free/-/feature-api-calls": "current usage 60",
        "fs-paid/-/feature-api-calls": "current usage 60",
    }
    customers = json.loads((tmp_path / "reports" / "from-stripe-from-stripe" / "customers.json").read_text())
    methods = {c["customerId"]: c.get("paymentMethodId") for c in customers["customers"]}
    assert methods["fs-paid"].startswith("pm_") and methods["fs-free"] is None


def test_one_usage_stigg_rejects_fails_alone_and_the_rest_of_its_chunk_lands(
    aws: LocalStack, stigg: StiggClient, write: Write, tmp_path: Path
) -> None:
    customers = write("iso-customers.json", "customers", _customers("iso", 2))
    usage = write(
        "iso-usage.json",
        "usages",
        [
            {"customerId": "iso-0", "featureId": "feature-api-calls", "usage": 10},
            {"customerId": "iso-0", "featureId": "feature-sso", "usage": 1},
            {"customerId": "iso-1", "featureId": "feature-compute-minutes", "usage": 7},
        ],
    )
    _, report = run_import(runner.ImportFiles(customers=customers, usage=usage), "isolate", tmp_path)
    assert report["totals"]["usage"] == {"created": 0, "updated": 2, "skipped": 0, "failed": 1}
    assert report["totals"]["chunks"]["failed"] == 0
    (failed,) = [r for r in report["rows"] if r["entity"] == "usage" and r["outcome"] == "failed"]
    assert failed["record"] == "iso-0/-/feature-sso"
    assert "Stigg reportUsageBulk" in failed["detail"]
