"""How fast is the Stigg emulator? Bulk imports of 1,000 customers (and their subscriptions, and usage), in chunks,
through the official stigg-api-client.

The emulator runs in its own process (as under `billmig local up`, with its SQLite state dir); the client runs in
this one, sequentially, as the import Lambda does. Each chunk size gets a fresh set of customer ids.

Run: .venv/bin/python bench/stigg_emulator.py [--customers 1000] [--chunks 100,250,1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stigg import Stigg, StiggClient


def serve(state_dir: Path) -> None:
    """Child process: start the emulator, seed it, print its URL, run until stdin closes."""
    from billmig_local.clock import WorldClock
    from billmig_local.emulators.stigg import start
    from billmig_local.emulators.stigg.seed import seed_catalogue

    emulator = start(clock=WorldClock(state_dir / "clock.json"), state_dir=state_dir)
    seed_catalogue(Stigg.create_client("bench", api_url=emulator.url + "/graphql", enable_edge=False))
    print(emulator.url, flush=True)
    sys.stdin.read()
    emulator.server.stop()


def chunked(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def timed(label: str, count: int, unit: str, calls: list[Any], send: Callable[[Any], None]) -> None:
    began = time.perf_counter()
    for call in calls:
        send(call)
    seconds = time.perf_counter() - began
    print(
        f"{label}: {count} {unit} in {len(calls)} calls, {seconds:.2f} s = {count / seconds:.0f} {unit}/s", flush=True
    )


def run(client: StiggClient, customers: int, chunk: int) -> None:
    run_id = uuid.uuid4().hex[:6]
    ids = [f"bench-{run_id}-{i}" for i in range(customers)]
    rows = [
        {
            "customerId": cid,
            "email": f"{cid}@example.com",
            "name": cid,
            "billingId": f"cus_{cid}",
            "additionalMetaData": {"bench": run_id},
        }
        for cid in ids
    ]
    subscriptions = [{"customerId": cid, "planId": "plan-free", "subscriptionId": f"sub-{cid}"} for cid in ids]
    usages = [
        {
            "customerId": cid,
            "featureId": "feature-api-calls",
            "value": 42,
            "updateBehavior": "SET",
            "idempotencyKey": f"{run_id}:{cid}",
        }
        for cid in ids
    ]

    def import_customers(batch: list[dict[str, Any]]) -> None:
        client.request(Stigg.mutation.import_customer_bulk, {"input": {"customers": batch}})

    def import_subscriptions(batch: list[dict[str, Any]]) -> None:
        client.request(Stigg.mutation.import_subscriptions_bulk, {"input": {"subscriptions": batch}})

    def report_usage(batch: list[dict[str, Any]]) -> None:
        client.request(Stigg.mutation.report_usage_bulk, {"input": {"usages": batch}})

    timed(f"importCustomersBulk, chunks of {chunk}", customers, "customers", chunked(rows, chunk), import_customers)
    timed(
        f"importSubscriptionsBulk, chunks of {chunk}",
        customers,
        "subscriptions",
        chunked(subscriptions, chunk),
        import_subscriptions,
    )
    usage_chunk = min(chunk, 100)  # Stigg takes at most 100 usages a call
    timed(f"reportUsageBulk, chunks of {usage_chunk}", customers, "usages", chunked(usages, usage_chunk), report_usage)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--chunks", default="100,250,1000")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", tempfile.mkdtemp(prefix="stigg-bench-")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        client = Stigg.create_client("bench", api_url=url + "/graphql", enable_edge=False)
        for chunk in (int(c) for c in args.chunks.split(",")):
            run(client, args.customers, chunk)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
