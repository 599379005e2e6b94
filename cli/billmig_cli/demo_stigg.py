"""The demo's second act: a Stigg import on the local stack, with a paid plan whose Stripe subscription is cancelled,
and a crash injected right after the paid plan is provisioned, which the import survives."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billmig_cli import aws_target
from billmig_cli import stigg_import as runner

DEMO_CUSTOMERS = 200


def paid_stripe_subscription(stripe_url: str, start: int) -> tuple[str, str]:
    import stripe

    c = stripe.StripeClient("sk_test_local", base_addresses={"api": stripe_url, "meter_events": stripe_url}).v1
    clock = c.test_helpers.test_clocks.create(params={"frozen_time": start}).id
    customer = c.customers.create(
        params={
            "test_clock": clock,
            "email": "billing@paid-demo.example",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    ).id
    product = c.products.create(params={"name": "Growth plan (demo)"}).id
    price = c.prices.create(
        params={"product": product, "currency": "usd", "unit_amount": 9900, "recurring": {"interval": "month"}}
    ).id
    return customer, c.subscriptions.create(params={"customer": customer, "items": [{"price": price}]}).id


def _stripe_status(stripe_url: str, subscription: str) -> str:
    import stripe

    client = stripe.StripeClient("sk_test_local", base_addresses={"api": stripe_url, "meter_events": stripe_url})
    return str(client.v1.subscriptions.retrieve(subscription).status)


def run_stigg_demo(console: Console, stack: Any, work: Path) -> bool:
    from billmig_local.emulators.stigg.seed import seed_catalogue
    from billmig_local.lambda_bridge import LambdaFault
    from billmig_local.stigg_book import generated_book
    from stigg import Stigg

    aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
    stigg_url, stripe_url = stack.emulators["stigg"].url, stack.emulators["stripe"].url
    seed_catalogue(Stigg.create_client("local-stigg-server-key", api_url=f"{stigg_url}/graphql", enable_edge=False))
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    stripe_customer, stripe_subscription = paid_stripe_subscription(stripe_url, start)
    book = generated_book(DEMO_CUSTOMERS)
    book["customers"].append(
        {"customerId": "paid-demo", "billingId": stripe_customer, "paymentMethodId": "pm_card_visa"}
    )
    paid = [
        {
            "customerId": "paid-demo",
            "planId": "plan-growth",
            "billingId": stripe_subscription,
            "billingPeriod": "MONTHLY",
            "startDate": "2026-01-01T00:00:00Z",
        }
    ]
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, root, records in (
        ("customers.json", "customers", book["customers"]),
        ("free-subscriptions.json", "subscriptions", book["free"]),
        ("custom-subscriptions.json", "subscriptions", book["custom"]),
        ("paid-subscriptions.json", "subscriptions", paid),
        ("usage.json", "usages", book["usages"]),
    ):
        paths[name] = work / name
        paths[name].write_text(json.dumps({root: records}))
    files = runner.ImportFiles(
        customers=paths["customers.json"],
        subscriptions=[paths[f"{k}-subscriptions.json"] for k in ("free", "custom", "paid")],
        usage=paths["usage.json"],
    )
    console.rule(f"Stigg import: {DEMO_CUSTOMERS + 1} customers, one on a paid plan billed by Stripe")
    stack.bridge.faults.append(LambdaFault(function="stigg-provision-paid", error="VendorUnavailable", when="after"))
    console.print("a crash is injected right after the paid plan is provisioned in Stigg")
    began = time.monotonic()
    started = runner.start_import(files, import_id="demo-stigg", paid_plan_ids=["plan-growth"], stack_name="billmig")
    result = runner.follow(started, stack_name="billmig", timeout=600)
    seconds = time.monotonic() - began
    if result["status"] != "SUCCEEDED":
        console.print(f"[red]{result['status']}[/] {runner.failure_of(result)}")
        return False
    report, json_path, csv_path = runner.fetch_report("demo-stigg", stack_name="billmig", report_dir=work)
    table = Table("entity", "created", "updated", "skipped", "failed", title=f"import demo-stigg in {seconds:.1f} s")
    for entity, totals in report["totals"].items():
        if any(totals.values()):
            table.add_row(entity, *(str(totals[k]) for k in ("created", "updated", "skipped", "failed")))
    console.print(table)
    status = _stripe_status(stripe_url, stripe_subscription)
    provisions = sum(1 for r in stack.emulators["stigg"].control.log if "provisionSubscription" in r.body)
    console.print(
        f"Stripe {stripe_subscription}: {status}; Stigg provision calls: {provisions} "
        "(the crash did not provision twice)"
    )
    console.print(f"reports: {json_path} {csv_path}", soft_wrap=True)
    totals = report["totals"]
    return (
        totals["customers"]["created"] == DEMO_CUSTOMERS + 1
        and totals["subscriptions"]["created"] == DEMO_CUSTOMERS
        and totals["paid_subscriptions"]["created"] == 1
        and totals["usage"]["updated"] == 2 * DEMO_CUSTOMERS
        and not any(t["failed"] for t in totals.values())
        and status == "canceled"
        and provisions == 1
    )
