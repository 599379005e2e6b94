"""How long does a Stigg import of N customers take on the local stack, and how many Stigg calls does it make?

Run: .venv/bin/python bench/stigg_import.py [--customers 1000]
The book: N customers, a free or custom subscription each (every tenth custom, with a limit and an add-on), two
usage records each. Wall time is from the execution's start to its end; calls are counted in the Stigg emulator's
request log by GraphQL operation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from billmig_cli import aws_target
from billmig_cli import stigg_import as runner
from billmig_local.emulators.stigg.seed import seed_catalogue
from billmig_local.stack import LocalStack, StackSettings
from billmig_local.stigg_book import generated_book
from stigg import Stigg

OPERATIONS = (
    "importCustomersBulk",
    "BillmigFindCustomer",
    "importSubscriptionsBulk",
    "BillmigActiveSubscriptions",
    "reportUsageBulk",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    with LocalStack(StackSettings(state_dir=work / "state", emulators=("stigg",))) as stack:
        aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
        stigg_url = f"{stack.emulators['stigg'].url}/graphql"
        seed_catalogue(Stigg.create_client("local-stigg-server-key", api_url=stigg_url, enable_edge=False))
        book = generated_book(args.customers)
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
        log = stack.emulators["stigg"].control.log
        log.clear()
        began = time.perf_counter()
        started = runner.start_import(
            files, import_id=f"bench-{args.customers}", paid_plan_ids=(), stack_name="billmig"
        )
        result = runner.follow(started, stack_name="billmig", timeout=1800)
        seconds = time.perf_counter() - began
        report, _, _ = runner.fetch_report(started.import_id, stack_name="billmig", report_dir=work / "reports")
        calls = Counter(op for entry in log for op in OPERATIONS if op in entry.body)
        records = started.records
        print(f"stigg import of {args.customers} customers ({records} records): {result['status']} in {seconds:.1f} s")
        print(f"  {records / seconds:.0f} records/s; report totals {json.dumps(report['totals'])}")
        print(f"  Stigg calls by operation: {dict(calls)} ({sum(calls.values())} in all, {len(log)} requests logged)")


if __name__ == "__main__":
    main()
