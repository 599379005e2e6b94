"""The Metronome migration (snapshot, prepare, contract, parallel run) for N customers on the local stack, beside a
plain sequential script making the same calls one customer at a time, in one run, with both emulators at the
vendors' limits (Stripe live 100/s; Metronome's emulator preset, 100/s) and 50 ms latency on every call.

Prints both wall times, the calls per endpoint, the rate-limit bound (the plan's figure: Stripe 100/s overall and
25/s per endpoint, Metronome 100/s assumed) and both ratios (sequential / state machine, state machine / bound).

Run: .venv/bin/python bench/metronome_migration.py [--customers 1000] [--concurrency 10] [--machine-only]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import stripe
from billmig.metronome.plan import BatchPlan
from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe.book_of_business import ensure_catalogue
from billmig_local.stack import LocalStack, StackSettings
from metronome import Metronome

CONFIG = Path(__file__).resolve().parents[1] / "events" / "metronome" / "migration.json"
RATED = ("api_calls", "compute_minutes", "storage_gb_us_east", "storage_gb_eu_west")
_ID = re.compile(r"/(?=[^/]*\d)[0-9A-Za-z_-]{12,}(?=/|$)")


def endpoint(vendor: str, method: str, path: str) -> str:
    return f"{vendor} {method} {_ID.sub('/{id}', path)}"


def seed_customers(client: stripe.StripeClient, prices: list[str], count: int, prefix: str) -> list[str]:
    def one(n: int) -> str:
        alias = f"{prefix}-{n:05d}"
        customer = client.v1.customers.create(
            params={"name": f"Bench {alias}", "metadata": {"internal_customer_id": alias}}
        ).id
        client.v1.subscriptions.create(params={"customer": customer, "items": [{"price": p} for p in prices]})
        for category in ("paid", "promotional")[: 1 + n % 2]:
            client.v1.billing.credit_grants.create(
                params={
                    "customer": customer,
                    "category": category,  # type: ignore[typeddict-item]
                    "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 1000 + n}},
                    "applicability_config": {"scope": {"price_type": "metered"}},
                }
            )
        return customer

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def sequential(
    stripe_client: stripe.StripeClient,
    metronome: Metronome,
    customers: list[str],
    rc: str,
    products: dict[str, str],
    prs: datetime,
) -> None:
    """What someone would write without billmig: the same reads and writes, one customer after the other."""
    m = metronome.with_options(max_retries=5)
    s = stripe_client.v1
    start_of_run = prs.strftime("%Y-%m-%dT%H:%M:%SZ")
    for stripe_id in customers:
        customer = s.customers.retrieve(stripe_id)
        subscription = s.subscriptions.list(params={"customer": stripe_id, "status": "all"}).data[0]
        grants = s.billing.credit_grants.list(params={"customer": stripe_id}).data
        balances = {
            g.id: s.billing.credit_balance_summary.retrieve(
                params={"customer": stripe_id, "filter": {"type": "credit_grant", "credit_grant": g.id}}
            )
            .balances[0]
            .available_balance.monetary.value  # type: ignore[union-attr]
            for g in grants
        }
        alias = customer.metadata["internal_customer_id"]  # type: ignore[index]
        found = list(m.v1.customers.list(ingest_alias=alias).data)
        made = (
            found[0]
            if found
            else m.v1.customers.create(
                name=str(customer.name),
                ingest_aliases=[alias],
                customer_billing_provider_configurations=[
                    {
                        "billing_provider": "stripe",
                        "delivery_method": "direct_to_billing_provider",
                        "configuration": {"stripe_customer_id": stripe_id},
                    }
                ],
            ).data
        )
        config = m.v1.customers.retrieve_billing_configurations(customer_id=made.id).data[0]
        m.v1.customers.retrieve(customer_id=made.id)
        m.post(
            "/v1/customers/setBillableStatus",
            cast_to=object,
            body={"customer_id": made.id, "billable_status": "unbillable", "effective_at": "2020-01-01T00:00:00Z"},
        )
        list(m.v2.contracts.list(customer_id=made.id))
        anchor = datetime.fromtimestamp(subscription.billing_cycle_anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        access = {"starting_at": start_of_run, "ending_before": "2100-01-01T00:00:00Z"}
        contract = m.v1.contracts.create(
            customer_id=made.id,
            starting_at=datetime.fromtimestamp(subscription.start_date, UTC).strftime("%Y-%m-%dT00:00:00Z"),
            rate_card_id=rc,
            usage_statement_schedule={
                "frequency": "MONTHLY",
                "day": "CUSTOM_DATE",
                "billing_anchor_date": anchor,
                "invoice_generation_starting_at": start_of_run,
            },
            billing_provider_configuration={"billing_provider_configuration_id": config.id},
            commits=[
                {
                    "product_id": products["commit"],
                    "type": "PREPAID",
                    "name": g.id,
                    "access_schedule": {"schedule_items": [{"amount": balances[g.id], **access}]},
                    "invoice_schedule": {
                        "schedule_items": [{"timestamp": start_of_run, "amount": balances[g.id]}],
                        "do_not_invoice": True,
                    },
                }
                for g in grants
                if g.category == "paid"
            ],
            credits=[
                {
                    "product_id": products["credit"],
                    "name": g.id,
                    "access_schedule": {"schedule_items": [{"amount": balances[g.id], **access}]},
                }
                for g in grants
                if g.category == "promotional"
            ],
            uniqueness_key=f"sequential:{stripe_id}",
        ).data
        m.v2.contracts.retrieve(customer_id=made.id, contract_id=contract.id)


def logged(stack: LocalStack) -> Counter[str]:
    calls: Counter[str] = Counter()
    for vendor in ("stripe", "metronome"):
        for request in stack.emulators[vendor].control.log:
            calls[endpoint(vendor, request.method, request.path)] += 1
    return calls


def clear_logs(stack: LocalStack) -> None:
    for vendor in ("stripe", "metronome"):
        stack.emulators[vendor].control.clear_log()


def runner_store(stack: LocalStack) -> Any:
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    return DynamoDBProgressStore(stack.outputs["ProgressTableName"], client=stack.client("dynamodb"))


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this process and its children, by role (from /proc: Linux only, as the bench machine).

    What tells a CPU-bound run from one bound by the vendors' limits, and which part of the local stack binds it."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    roles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it ended while we looked
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
        roles[pid] = (
            "Lambda environments"
            if "lambda_runtime" in command
            else "Stripe emulator"
            if "own_process stripe" in command
            else "Metronome emulator"
            if "own_process metronome" in command
            else "the stack (moto, Step Functions, bridge) and the waiter"
        )
    ours: dict[str, float] = dict.fromkeys(roles.values(), 0.0)
    me = os.getpid()
    for pid, seconds in used.items():
        ancestor = pid
        while ancestor not in (me, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == me:
            ours[roles[pid]] += seconds
    return ours


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    import os

    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def limits(stack: LocalStack, latency_ms: int) -> None:
    for vendor, preset in (("stripe", "stripe_live"), ("metronome", "metronome")):
        url = stack.emulators[vendor].url
        httpx.post(f"{url}/_emulator/latency", json={"ms": latency_ms}, timeout=10).raise_for_status()
        httpx.post(f"{url}/_emulator/rate_limit", json={"preset": preset}, timeout=10).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    # 14: 1,000 customers took 151.4 / 129.7 / 128.9 / 129.8 s at 10 / 14 / 18 / 24 (2026-12-04, two cores): from 14
    # on the machine's CPU binds, not the Map's slots, and more environments only add processes.
    parser.add_argument("--concurrency", type=int, default=14)
    parser.add_argument("--latency-ms", type=int, default=50)
    # By default each emulator runs in a process of its own, as the vendors are remote: served from the stack's
    # process, they share one GIL with moto and the Step Functions interpreter, which is then what is measured.
    parser.add_argument(
        "--emulators-in-stack", action="store_true", help="serve the emulators from the stack's process"
    )
    # While tuning the orchestration: the sequential half of 1,000 customers takes 12 minutes and does not change.
    parser.add_argument("--machine-only", action="store_true", help="time the state machine only, no sequential script")
    args = parser.parse_args()
    settings = StackSettings(
        state_dir=Path(tempfile.mkdtemp()),
        emulators=("stripe", "metronome"),
        emulator_processes=() if args.emulators_in_stack else ("stripe", "metronome"),
        console=False,
        lambda_concurrency=args.concurrency,
        retry_scale=0.25,
    )
    with LocalStack(settings) as stack:
        aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
        stripe_url, metronome_url = stack.emulators["stripe"].url, stack.emulators["metronome"].url
        client = stripe.StripeClient(
            "sk_test_local", base_addresses={"api": stripe_url, "meter_events": stripe_url}, max_network_retries=5
        )
        book = ensure_catalogue(client, int(stack.clock.now()) // 3600 * 3600)
        prices = [book.metered[k].price for k in RATED]
        began = time.perf_counter()
        ours = seed_customers(client, prices, args.customers, "sm")
        theirs = [] if args.machine_only else seed_customers(client, prices, args.customers, "seq")
        metronome = Metronome(bearer_token="local", base_url=metronome_url, max_retries=5)
        catalogue = seed_catalogue(metronome)
        print(
            f"seeded {1 if args.machine_only else 2} x {args.customers} Stripe customers "
            f"in {time.perf_counter() - began:.1f} s"
        )

        vendors = runner.connect("sk_test_local", stripe_url, "local-metronome-token", metronome_url)
        prs = datetime.fromtimestamp(book.as_of, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        cutover = prs.replace(year=prs.year + prs.month // 12, month=prs.month % 12 + 1)
        config = runner.resolved_config(
            CONFIG,
            vendors,
            {"parallel_run_start": prs.isoformat(), "cutover_at": cutover.isoformat(), "concurrency": args.concurrency},
        )
        batch = runner.Batch(f"bench-{args.customers}", ours)
        plan: BatchPlan = runner.plan(batch, config, vendors)
        assert not plan.blocked, plan.as_json()["blocked"]
        bound = plan.duration()

        limits(stack, args.latency_ms)
        clear_logs(stack)
        # The deployed stack and the seeds live as long as the run: frozen, the collector stops walking them.
        gc.collect()
        gc.freeze()
        cpu_before, busy_before = cpu_seconds(), machine_busy()
        began, began_at = time.perf_counter(), stack.clock.now()  # the steps stamp the world clock
        started = runner.start(batch, config, plan)
        final = runner.wait_for_parallel_run(
            batch.batch_id, len(ours), timeout=7200, execution_arn=started.execution_arn
        )
        machine_seconds = time.perf_counter() - began
        cpu_after, busy_after = cpu_seconds(), machine_busy()
        cpu_used = {role: cpu_after.get(role, 0.0) - cpu_before.get(role, 0.0) for role in cpu_after}
        busy = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
        print(
            f"CPU during the state machine's run: {sum(cpu_used.values()):.0f} s "
            f"({1000 * sum(cpu_used.values()) / len(ours):.0f} ms a customer; the machine {busy:.0%} busy): "
            + ", ".join(f"{role} {cpu_used[role]:.0f} s" for role in sorted(cpu_used, key=cpu_used.__getitem__)[::-1])
        )
        machine_calls = logged(stack)
        assert not final.failures, list(final.failures.items())[:5]
        errors: Counter[str] = Counter()
        for progress in runner_store(stack).all_in_run(batch.batch_id):
            for step, record in progress.steps.items():
                errors[f"{step} attempts {record.attempts}"] += 1
                if record.last_error:
                    errors[f"{step} {record.last_error.type}"] += 1
        print("retried:", dict(sorted(errors.items())))
        spans = []
        for progress in runner_store(stack).all_in_run(batch.batch_id):
            # the iteration's whole span: from its first step's start to its last step's (the usage backfill) end
            first = progress.steps["metronome.snapshot"].started_at
            last = progress.steps["metronome.backfill_usage"].finished_at
            if first and last:
                spans.append((first.timestamp(), last.timestamp()))
        overlap = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
        per = sum(b - a for a, b in spans) / len(spans)
        print(f"customers in flight at once: at most {overlap}; {per:.2f} s per customer")
        first, last = min(a for a, _ in spans), max(b for _, b in spans)
        print(
            f"first customer's first step {first - began_at:.1f} s after the start; last one's last step "
            f"{began_at + machine_seconds - last:.1f} s before the end; "
            f"{sum(b - a for a, b in spans) / (last - first):.1f} customers in flight on average between them"
        )

        if args.machine_only:
            print(
                f"\nstate machine: {machine_seconds:.1f} s; rate-limit bound (plan): {bound['bound']:.1f} s = "
                f"{machine_seconds / bound['bound']:.2f}x"
            )
            aws_target.unpin()
            return
        clear_logs(stack)
        began = time.perf_counter()
        sequential(
            client,
            metronome,
            theirs,
            catalogue.rate_card_id,
            {"commit": catalogue.prepaid_commit_product_id, "credit": catalogue.promotional_credit_product_id},
            prs,
        )
        sequential_seconds = time.perf_counter() - began
        sequential_calls = logged(stack)

        print(
            f"\n{args.customers} customers, {args.latency_ms} ms latency, Stripe 100/s, Metronome 100/s, "
            f"Map and Lambda concurrency {args.concurrency} (execution {started.execution_arn.rsplit(':', 1)[-1]})"
        )
        print(f"{'endpoint':<66} {'state machine':>13} {'sequential':>10}")
        for name in sorted(set(machine_calls) | set(sequential_calls)):
            print(f"{name:<66} {machine_calls[name]:>13} {sequential_calls[name]:>10}")
        print(f"{'total':<66} {sum(machine_calls.values()):>13} {sum(sequential_calls.values()):>10}")
        print(
            f"\nrate-limit bound (plan): {bound['bound']:.1f} s (Stripe {bound['stripe']:.1f} s, "
            f"Metronome {bound['metronome']:.1f} s)"
        )
        print(f"state machine: {machine_seconds:.1f} s = {args.customers / machine_seconds:.1f} customers/s")
        print(f"sequential script: {sequential_seconds:.1f} s = {args.customers / sequential_seconds:.1f} customers/s")
        print(f"sequential / state machine: {sequential_seconds / machine_seconds:.2f}x (target >= 5)")
        print(f"state machine / bound: {machine_seconds / bound['bound']:.2f}x (target <= 1.3)")
        print(json.dumps({"machine_s": machine_seconds, "sequential_s": sequential_seconds, "bound_s": bound["bound"]}))
        aws_target.unpin()


if __name__ == "__main__":
    main()
