"""The demo's Metronome act (the lead makes it the first): seed Stripe and Metronome, plan a batch, start the
customers that can migrate, and print what was created in Metronome and the credits moved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner

SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "events" / "metronome" / "migration.json"
DEMO_SEED = 7


def _month_start(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seed_world(stack: Any, customers: int) -> tuple[list[str], datetime]:
    """Both seeds through the vendors' SDKs; returns the Stripe customers and the parallel-run start."""
    import stripe
    from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
    from billmig_local.emulators.stripe.book_of_business import ensure_catalogue, populate
    from metronome import Metronome

    url = stack.emulators["stripe"].url
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": url, "meter_events": url})
    book = ensure_catalogue(client, int(stack.clock.now()) // 3600 * 3600)
    seeded = populate(client, book, customers=customers, seed=DEMO_SEED, workers=4)
    with Metronome(bearer_token="local", base_url=stack.emulators["metronome"].url) as metronome:
        seed_catalogue(metronome)
    return [c.customer for c in seeded], _month_start(book.as_of)


def run_metronome_act(
    console: Console, stack: Any, customers: int = 20, *, progress: Callable[[str], None] | None = None
) -> bool:
    """True when every customer the plan let through reached its parallel run with its credits reconciled."""
    aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
    say = progress or (lambda line: console.print(line, soft_wrap=True))
    say(f"seeding a Stripe book of {customers} customers and the Metronome catalogue")
    ids, parallel_run_start = seed_world(stack, customers)
    vendors = runner.connect(
        "sk_test_local", stack.emulators["stripe"].url, "local-metronome-token", stack.emulators["metronome"].url
    )
    next_month = parallel_run_start.replace(
        year=parallel_run_start.year + parallel_run_start.month // 12, month=parallel_run_start.month % 12 + 1
    )
    overrides = {"parallel_run_start": parallel_run_start.isoformat(), "cutover_at": next_month.isoformat()}
    config = runner.resolved_config(SAMPLE_CONFIG, vendors, overrides)
    batch = runner.Batch("demo-metronome", ids)
    plan = runner.plan(batch, config, vendors)
    say("plan: " + ", ".join(f"{k} {v}" for k, v in plan.totals().items()))
    for blocked in plan.blocked:
        say(f"  left out {blocked.stripe_customer_id}: {'; '.join(blocked.reasons)}")
    started = runner.start(batch, config, plan, exclude_blocked=True)
    say(f"started {started.execution_arn.rsplit(':', 1)[-1]} for {started.customers} customers")
    status = runner.wait_for_parallel_run(batch.batch_id, started.customers, timeout=600)
    console.print(_created_table(vendors, plan, batch.batch_id))
    ok = status.done == started.customers and not status.failures
    for customer, why in status.failures.items():
        say(f"[red]failed[/] {customer}: {why}")
    say(
        f"{status.done} of {started.customers} customers in their parallel run, "
        f"waiting for the cutover at {config.cutover_at.isoformat()}"
    )
    return ok


def _created_table(vendors: runner.Vendors, plan: Any, batch_id: str) -> Table:
    table = Table(
        "Stripe customer", "Metronome customer", "contract", "commits", "credits", title="created in Metronome"
    )
    moved = 0
    for customer in plan.customers:
        if not customer.can_migrate or customer.internal_id is None:
            continue
        found = vendors.metronome.customer_by_alias(customer.internal_id)
        if found is None:
            table.add_row(customer.stripe_customer_id, "-", "-", "-", "-")
            continue
        contracts = vendors.metronome.contracts(found.id)
        balances = [b for c in contracts for b in c.balances]
        commits = [f"{b.amount / 100:.2f}" for b in balances if b.kind != "CREDIT"]
        credits = [f"{b.amount / 100:.2f}" for b in balances if b.kind == "CREDIT"]
        moved += sum(b.amount for b in balances)
        table.add_row(
            customer.stripe_customer_id,
            f"{found.id[:8]} {found.ingest_aliases[0]} {found.billable_status}",
            ", ".join(c.id[:8] for c in contracts),
            " ".join(commits),
            " ".join(credits),
        )
    table.caption = f"${moved / 100:,.2f} of Stripe credit balances moved (batch {batch_id})"
    return table
