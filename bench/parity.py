"""A parity run over N customers on the local stack (the parity state machine: list, distributed Map of checks, the
report), beside a plain sequential loop making the same reads one customer at a time, with both emulators at the
vendors' limits (Stripe live 100/s; Metronome's emulator preset, 100/s) and 50 ms latency on every call.

The world: N Stripe customers on the four rated prices with a paid and a promotional grant, migrated in-process
(snapshot, prepare, contract, parallel run, no latency), one closed billing period of usage sent to both vendors the
way the router sends it, and the world clock moved past the period's end and the late-event window. Then, at the
limits: the state machine (`billmig parity run --batch`), and the sequential loop (the check's domain call for each
customer, in one thread, under another parity run id: the same vendor reads, no Step Functions, no Lambda).

Prints the calls per vendor endpoint for both, both wall times, the rate-limit bound (the Metronome plan's figures:
Stripe 100/s overall and 25/s per endpoint, Metronome 100/s assumed, over the calls answered: a 429 is the limit
reached, not work), the ratios, the time in each state and the 429s. The Stripe emulator enforces the per-endpoint
limit too, so the 4 meter event summaries per customer on one endpoint are what binds.

Run: .venv/bin/python bench/parity.py [--customers 1000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import stripe
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.metronome_sdk import MetronomeSDKTarget
from billmig.adapters.s3_import_storage import S3ImportStorage
from billmig.adapters.stripe_sdk import StripeSDKSource
from billmig.adapters.usage_totals import VendorUsageTotals
from billmig.metronome.contract import write_contract
from billmig.metronome.customer import prepare_customer
from billmig.metronome.parallel_run import begin_parallel_run
from billmig.metronome.plan import METRONOME_ASSUMED_PER_SECOND, STRIPE_LIVE_PER_SECOND, STRIPE_PER_ENDPOINT_PER_SECOND
from billmig.metronome.snapshot import CustomerStepRequest, snapshot_customer
from billmig.metronome.storage import MigrationRun, run_key
from billmig.parity.run import CheckParityRequest, ParityFilters, check_parity
from billmig.usage.mapping import router_config_from_json
from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner
from billmig_cli.commands.parity import read_report, start_run
from billmig_cli.executions import wait
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe.book_of_business import ensure_catalogue
from billmig_local.stack import LocalStack, StackSettings
from metronome import Metronome
from metronome_migration import clear_logs, endpoint, limits, logged  # bench/: the calls per endpoint, counted alike

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "events" / "metronome" / "migration.json"
ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"
RATED = ("api_calls", "compute_minutes", "storage_gb_us_east", "storage_gb_eu_west")
USAGE = [("api_call", 1, None)] * 3 + [("compute_minutes", 40, None), ("storage_gb", 12, "us-east")]


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seed_customers(client: stripe.StripeClient, prices: list[str], count: int, prefix: str) -> list[tuple[str, str]]:
    """(Stripe id, internal id) of `count` customers on the rated prices, each with a paid and a promotional grant."""

    def one(n: int) -> tuple[str, str]:
        alias = f"{prefix}-{n:05d}"
        customer = client.v1.customers.create(
            params={"name": f"Bench {alias}", "metadata": {"internal_customer_id": alias}}
        ).id
        client.v1.subscriptions.create(params={"customer": customer, "items": [{"price": p} for p in prices]})
        for category, value, priority in (("paid", 12345, 50), ("promotional", 2500, 10)):
            client.v1.billing.credit_grants.create(
                params={
                    "customer": customer,
                    "name": f"{category} for {alias}",
                    "category": category,  # type: ignore[typeddict-item]
                    "priority": priority,
                    "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
                    "applicability_config": {"scope": {"price_type": "metered"}},
                }
            )
        return customer, alias

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def migrate(stack: LocalStack, batch: str, customers: list[tuple[str, str]]) -> None:
    """The four migration steps per customer, in-process, as the Lambdas call them (8 customers at once)."""
    stripe_url, metronome_url = stack.emulators["stripe"].url, stack.emulators["metronome"].url
    storage = S3ImportStorage(stack.outputs["ImportBucketName"], client=stack.client("s3"))
    store = DynamoDBProgressStore(stack.outputs["ProgressTableName"], client=stack.client("dynamodb"))
    source = StripeSDKSource.connect("sk_test_local", stripe_url)
    target = MetronomeSDKTarget(Metronome(bearer_token="local", base_url=metronome_url, max_retries=0))

    def one(customer: tuple[str, str]) -> None:
        request = CustomerStepRequest(
            batch_id=batch, stripe_customer_id=customer[0], run_key=run_key(batch), runner=f"bench-{batch}"
        )
        snapshot_customer(request, storage, source, store)
        prepare_customer(request, storage, target, store)
        write_contract(request, storage, target, store)
        begin_parallel_run(request, storage, store)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, customers))


def send_usage(
    client: stripe.StripeClient, metronome: Metronome, customers: list[tuple[str, str]], at: datetime
) -> None:
    """The same events to Stripe's meters and Metronome's ingest, with shared ids, as the usage router sends them."""

    def one(customer: tuple[str, str]) -> list[dict[str, Any]]:
        stripe_id, alias = customer
        usage = []
        for n, (kind, value, region) in enumerate(USAGE):
            when = at + timedelta(minutes=n)
            client.v1.billing.meter_events.create(
                params={
                    "event_name": f"{kind}.{region}" if region else kind,
                    "payload": {"stripe_customer_id": stripe_id, "value": str(value)},
                    "identifier": f"{alias}-{n}",
                    "timestamp": int(when.timestamp()),
                }
            )
            properties: dict[str, Any] = {"minutes": value} if kind == "compute_minutes" else {}
            if region:
                properties = {"gb": value, "region": region}
            usage.append(
                {
                    "transaction_id": f"usage_{alias}-{n}",
                    "customer_id": alias,
                    "event_type": kind,
                    "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "properties": properties,
                }
            )
        return usage

    with ThreadPoolExecutor(max_workers=8) as pool:
        events = [e for batch in pool.map(one, customers) for e in batch]
    for start in range(0, len(events), 100):
        metronome.v1.usage.ingest(usage=events[start : start + 100])  # type: ignore[arg-type]


def sequential(stack: LocalStack, batch: str, customers: list[tuple[str, str]], run_id: str) -> None:
    """What someone would write without the state machine: the check of one customer after the other."""
    stripe_url, metronome_url = stack.emulators["stripe"].url, stack.emulators["metronome"].url
    table = stack.outputs["ProgressTableName"]
    dynamodb = stack.client("dynamodb")
    storage = S3ImportStorage(stack.outputs["ImportBucketName"], client=stack.client("s3"))
    store = DynamoDBProgressStore(table, client=dynamodb)
    ledger = DynamoDBParityLedger(table, client=dynamodb)
    stripe_reads = StripeSDKSource.connect("sk_test_local", stripe_url)
    metronome_reads = MetronomeSDKTarget(Metronome(bearer_token="local", base_url=metronome_url, max_retries=5))
    totals = VendorUsageTotals.connect("sk_test_local", stripe_url, "local", metronome_url)
    router = router_config_from_json(ROUTER_CONFIG.read_text(), str(ROUTER_CONFIG))
    for stripe_id, _ in customers:
        request = CheckParityRequest(parity_run_id=run_id, batch_id=batch, stripe_customer_id=stripe_id, runner=run_id)
        check_parity(request, storage, store, ledger, stripe_reads, metronome_reads, totals, router,
                     stack.clock.now_datetime)  # fmt: skip


def phases(sfn: Any, arn: str) -> dict[str, float]:
    """Seconds spent in each top-level state of the execution, from its history: where the wall time went."""
    entered: dict[str, datetime] = {}
    spent: dict[str, float] = {}
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            if "stateEnteredEventDetails" in event:
                entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
            elif "stateExitedEventDetails" in event:
                name = event["stateExitedEventDetails"]["name"]
                if name in entered:
                    spent[name] = (event["timestamp"] - entered[name]).total_seconds()
    return spent


def served(stack: LocalStack) -> Counter[str]:
    """Calls per endpoint the emulators answered other than 429: the work the bound is computed from (a throttled
    call is the limit being reached, not more work)."""
    calls: Counter[str] = Counter()
    for vendor in ("stripe", "metronome"):
        for request in stack.emulators[vendor].control.log:
            if request.status != 429:
                calls[endpoint(vendor, request.method, request.path)] += 1
    return calls


def throttled(stack: LocalStack) -> Counter[str]:
    """Requests each emulator answered 429 (its rate limit), which the SDKs then retried after a back-off."""
    return Counter(
        vendor for vendor in ("stripe", "metronome") for r in stack.emulators[vendor].control.log if r.status == 429
    )


def bound(calls: Counter[str]) -> dict[str, float]:
    """Seconds these calls take at the vendors' limits, at best (every customer at once)."""
    stripe_calls = [n for k, n in calls.items() if k.startswith("stripe ")]
    metronome_calls = sum(n for k, n in calls.items() if k.startswith("metronome "))
    stripe_bound = max(
        sum(stripe_calls) / STRIPE_LIVE_PER_SECOND, max(stripe_calls, default=0) / STRIPE_PER_ENDPOINT_PER_SECOND
    )
    metronome_bound = metronome_calls / METRONOME_ASSUMED_PER_SECOND
    return {"stripe": stripe_bound, "metronome": metronome_bound, "bound": max(stripe_bound, metronome_bound)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=50)
    # By default each emulator runs in a process of its own, as the vendors are remote: served from the stack's
    # process, they share one GIL with moto and the Step Functions interpreter, which is then what is measured.
    parser.add_argument(
        "--emulators-in-stack", action="store_true", help="serve the emulators from the stack's process"
    )
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    parameters = {"Stage": "local", "ParityConcurrency": str(args.concurrency)}
    settings = StackSettings(
        state_dir=Path(tempfile.mkdtemp()),
        emulators=("stripe", "metronome"),
        emulator_processes=() if args.emulators_in_stack else ("stripe", "metronome"),
        console=False,
        lambda_concurrency=args.concurrency,
        retry_scale=0.25,
        parameters=parameters,
    )
    with LocalStack(settings) as stack:
        aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
        stripe_url, metronome_url = stack.emulators["stripe"].url, stack.emulators["metronome"].url
        client = stripe.StripeClient(
            "sk_test_local", base_addresses={"api": stripe_url, "meter_events": stripe_url}, max_network_retries=5
        )
        stack.client("ssm").put_parameter(
            Name=stack.outputs["UsageRouterConfigParameter"], Value=ROUTER_CONFIG.read_text(), Type="String",
            Overwrite=True,
        )  # fmt: skip
        began = time.perf_counter()
        book = ensure_catalogue(client, int(stack.clock.now()) // 3600 * 3600)
        metronome = Metronome(bearer_token="local", base_url=metronome_url, max_retries=5)
        seed_catalogue(metronome)
        t0 = stack.clock.now_datetime()
        vendors = runner.connect("sk_test_local", stripe_url, "local-metronome-token", metronome_url)
        config = runner.resolved_config(
            CONFIG,
            vendors,
            {
                "parallel_run_start": month_start(t0).isoformat(),
                "cutover_at": month_start(t0 + timedelta(days=100)).isoformat(),
            },
        )
        batch = f"bench-parity-{args.customers}"
        storage = S3ImportStorage(stack.outputs["ImportBucketName"], client=stack.client("s3"))
        storage.write_json(run_key(batch), MigrationRun(batch_id=batch, config=config).model_dump(mode="json"))
        customers = seed_customers(client, [book.metered[k].price for k in RATED], args.customers, "par")
        print(f"seeded {args.customers} Stripe customers in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        migrate(stack, batch, customers)
        print(f"migrated them to their parallel run in {time.perf_counter() - began:.1f} s")
        stack.move_clock(advance=3 * 3600)
        at = t0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, minutes=5)
        began = time.perf_counter()
        send_usage(client, metronome, customers, at)
        subscription = client.v1.subscriptions.list(params={"customer": customers[0][0]}).data[0]
        period_end = datetime.fromtimestamp(subscription["items"].data[0].current_period_end, t0.tzinfo)
        stack.move_clock(to=(period_end + timedelta(hours=49)).timestamp())
        print(
            f"usage sent and the clock moved past {period_end:%Y-%m-%d} + 49 h in {time.perf_counter() - began:.1f} s"
        )

        limits(stack, args.latency_ms)
        clear_logs(stack)
        began = time.perf_counter()
        arn = start_run(ParityFilters(batch_id=batch), stack_name="billmig", now=aws_target.world_now())
        description = wait(stack.client("stepfunctions"), arn, timeout=7200)
        machine_seconds = time.perf_counter() - began
        machine_calls = logged(stack)
        machine_served = served(stack)
        machine_throttled = throttled(stack)
        machine_phases = phases(stack.client("stepfunctions"), arn)
        assert description["status"] == "SUCCEEDED", description
        report = read_report(arn.rsplit(":", 1)[-1], stack_name="billmig")
        summary = report["summary"]
        print(
            f"state machine: {report['status_detail']}; {summary['customers_checked']} checked, "
            f"{summary['customers_within_tolerance']} within tolerance, {summary['differences']} differences"
        )

        sequential_seconds = 0.0
        sequential_calls: Counter[str] = Counter()
        if not args.skip_sequential:
            clear_logs(stack)
            began = time.perf_counter()
            sequential(stack, batch, customers, f"sequential-{args.customers}")
            sequential_seconds = time.perf_counter() - began
            sequential_calls = logged(stack)

        limit = bound(machine_served)
        print(
            f"\n{args.customers} customers, {args.latency_ms} ms latency, Stripe 100/s, Metronome 100/s, "
            f"Map and Lambda concurrency {args.concurrency} (execution {arn.rsplit(':', 1)[-1]})"
        )
        print(f"{'endpoint':<70} {'state machine':>13} {'sequential':>10}")
        for name in sorted(set(machine_calls) | set(sequential_calls)):
            print(f"{name:<70} {machine_calls[name]:>13} {sequential_calls[name]:>10}")
        print(f"{'total':<70} {sum(machine_calls.values()):>13} {sum(sequential_calls.values()):>10}")
        print(
            f"\nrate-limit bound: {limit['bound']:.1f} s (Stripe {limit['stripe']:.1f} s, "
            f"Metronome {limit['metronome']:.1f} s)"
        )
        print(f"state machine: {machine_seconds:.1f} s = {args.customers / machine_seconds:.1f} customers/s")
        print(f"state machine / bound: {machine_seconds / limit['bound']:.2f}x")
        print("  states: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in machine_phases.items()))
        print(
            "  answered 429: "
            + ", ".join(f"{vendor} {machine_throttled[vendor]}" for vendor in ("stripe", "metronome"))
        )
        if sequential_seconds:
            print(
                f"sequential loop: {sequential_seconds:.1f} s = {args.customers / sequential_seconds:.1f} customers/s"
            )
            print(f"sequential / state machine: {sequential_seconds / machine_seconds:.2f}x")
        print(
            json.dumps(
                {"machine_s": machine_seconds, "sequential_s": sequential_seconds, "bound_s": limit["bound"],
                 "calls": sum(machine_calls.values())}
            )
        )  # fmt: skip
        aws_target.unpin()


if __name__ == "__main__":
    main()
