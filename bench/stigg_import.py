"""The project's Stigg import against a plain sequential script making the same writes, in one run.

Run: .venv/bin/python bench/stigg_import.py [--customers 5000] [--latency-ms 50]
The book: N customers, a free or custom subscription each (every tenth custom, with a limit and an add-on), two
usage records each. The Stigg emulator answers every request after `--latency-ms` and enforces Stigg's published
limits (its defaults: imports 250 calls/min, usage 600/min, ...), so both runs pay a real round trip and the limits
bind. The sequential script is what an operator would write with `stigg-api-client`: every customer call, then every
subscription call, then every usage call, one at a time, nothing read back. The project's import is timed from the
execution's start to its end, report included; its Stigg calls are counted from the emulator's request log.

The rate-limit bound printed is the time a client needs that spaces the same writes evenly at Stigg's published
rates, one kind after the other (calls x 60 s / limit, summed): what pacing to the limits costs if no burst is used.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from billmig_cli import aws_target
from billmig_cli import stigg_import as runner
from billmig_local.emulators.stigg.seed import seed_catalogue
from billmig_local.stack import LocalStack, StackSettings
from billmig_local.stigg_book import generated_book
from stigg import Stigg
from stigg.client import StiggClient

CUSTOMERS_PER_CALL, SUBSCRIPTIONS_PER_CALL, USAGES_PER_CALL = 1000, 1000, 100
PER_MINUTE = {"importCustomersBulk": 250, "importSubscriptionsBulk": 250, "reportUsageBulk": 600}
OPERATIONS = (
    "importCustomersBulk",
    "importSubscriptionsBulk",
    "reportUsageBulk",
    "BillmigExistingCustomers",
    "BillmigExistingSubscriptions",
    "BillmigImportTask",
    "BillmigListCustomers",
    "BillmigListSubscriptions",
    "BillmigFindCustomer",
    "BillmigActiveSubscriptions",
)


def renamed(book: dict[str, list[dict[str, Any]]], prefix: str) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: [{**r, "customerId": r["customerId"].replace("book", prefix)} for r in records]
        for kind, records in book.items()
    }


def slices(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def sequential_script(client: StiggClient, book: dict[str, list[dict[str, Any]]]) -> tuple[float, Counter[str]]:
    """The same writes, one call after another, straight through the SDK."""
    calls: Counter[str] = Counter()
    began = time.perf_counter()
    for part in slices(book["customers"], CUSTOMERS_PER_CALL):
        client.request(Stigg.mutation.import_customer_bulk, {"input": {"customers": part}})
        calls["importCustomersBulk"] += 1
    subscriptions = [
        {**s, "subscriptionId": f"seq-sub-{s['customerId']}", "addons": s.get("addons") or None}
        for s in [*book["free"], *book["custom"]]
    ]
    subscriptions = [{k: v for k, v in s.items() if v is not None} for s in subscriptions]
    for part in slices(subscriptions, SUBSCRIPTIONS_PER_CALL):
        client.request(Stigg.mutation.import_subscriptions_bulk, {"input": {"subscriptions": part}})
        calls["importSubscriptionsBulk"] += 1
    usages = [
        {"customerId": u["customerId"], "featureId": u["featureId"], "value": u["usage"], "updateBehavior": "SET"}
        for u in book["usages"]
    ]
    for part in slices(usages, USAGES_PER_CALL):
        client.request(Stigg.mutation.report_usage_bulk, {"input": {"usages": part}})
        calls["reportUsageBulk"] += 1
    return time.perf_counter() - began, calls


def project_import(stack: LocalStack, work: Path, book: dict[str, list[dict[str, Any]]], import_id: str) -> Any:
    paths = {}
    for name, root, records in (
        ("customers.json", "customers", book["customers"]),
        ("free.json", "subscriptions", book["free"]),
        ("custom.json", "subscriptions", book["custom"]),
        ("usage.json", "usages", book["usages"]),
    ):
        paths[name] = work / name
        paths[name].write_text(json.dumps({root: records}))
    files = runner.ImportFiles(
        customers=paths["customers.json"],
        subscriptions=[paths["free.json"], paths["custom.json"]],
        usage=paths["usage.json"],
    )
    began = time.perf_counter()
    started = runner.start_import(files, import_id=import_id, paid_plan_ids=(), stack_name="billmig")
    result = runner.follow(started, stack_name="billmig", timeout=1800)
    seconds = time.perf_counter() - began
    report, _, _ = runner.fetch_report(started.import_id, stack_name="billmig", report_dir=work / "reports")
    return seconds, result, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    with LocalStack(StackSettings(state_dir=work / "state", emulators=("stigg",))) as stack:
        aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
        stigg_url = f"{stack.emulators['stigg'].url}/graphql"
        client = Stigg.create_client("local-stigg-server-key", api_url=stigg_url, enable_edge=False)
        seed_catalogue(client)
        control = stack.emulators["stigg"].control
        control.env.limits.reset()  # Stigg's published limits, nothing counted yet
        control.latency_ms = args.latency_ms
        book = generated_book(args.customers)

        control.log.clear()
        sequential_seconds, sequential_calls = sequential_script(client, renamed(book, "seq"))
        sequential_429 = sum(1 for e in control.log if e.status == 429)

        control.log.clear()
        seconds, result, report = project_import(stack, work, book, f"bench-{args.customers}")
        calls = Counter(op for entry in control.log for op in OPERATIONS if op in entry.body)
        throttled = sum(1 for e in control.log if e.status == 429)

    n = args.customers
    bound = sum(sequential_calls[op] * 60.0 / PER_MINUTE[op] for op in PER_MINUTE)
    total = sum(calls.values())
    print(f"Stigg import of {n} customers ({n} subscriptions, {2 * n} usage records), latency {args.latency_ms:g} ms")
    print(f"  sequential script (stigg-api-client): {sequential_seconds:.1f} s, {dict(sequential_calls)}, 429s: "
          f"{sequential_429}")  # fmt: skip
    print(f"  project import: {result['status']} in {seconds:.1f} s; totals {json.dumps(report['totals'])}")
    print(f"  project's Stigg calls: {dict(calls)} = {total} ({total * 1000 / n:.1f} per 1,000 customers), 429s: "
          f"{throttled}")  # fmt: skip
    print(f"  rate-limit bound (writes evenly at 250/min imports, 600/min usage): {bound:.1f} s")
    print(f"  import / sequential = {seconds / sequential_seconds:.2f}; import / bound = {seconds / bound:.2f}")


if __name__ == "__main__":
    main()
