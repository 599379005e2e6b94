"""The demo's Metronome act: a Stripe book's lifecycle from Stripe to Metronome, as named stages (see
`demo_lifecycle`): seed both vendors, plan, start, the parallel run with the credits moved, a month of usage through
the router, the world clock past the month boundary, then the stages that have not been built yet say so."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billmig_cli import aws_target, executions
from billmig_cli import metronome_migration as runner
from billmig_cli.demo_lifecycle import LifecycleReport, NotAvailable, PeriodInvoices, Stage, expect, run_stages
from billmig_cli.demo_usage import Streamed, steps, week_of_usage

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "events" / "metronome" / "migration.json"
ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"
DEMO_SEED = 7
BATCH_ID = "demo-metronome"
# Map and Lambda concurrency for the demo: on two cores more parallel Tasks only add cold starts.
DEMO_CONCURRENCY = 4
READ_WORKERS = 4
# The seeded profiles the plan must leave out (book_of_business.SPECIAL_PROFILES and its random past-due ones).
BLOCKED_PROFILES = {"past_due", "trialing", "cancel_at_period_end", "unrated_region"}
DRAIN_SECONDS = 300.0


def _month_start(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(at: datetime) -> datetime:
    return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)


def _period(instant: int | datetime) -> str:
    at = instant if isinstance(instant, datetime) else datetime.fromtimestamp(instant, UTC)
    return f"{at:%Y-%m}"


@dataclass
class MetronomeWorld:
    """What the stages share: the stack, both vendors, the batch as it goes, and the report they fill in."""

    console: Console
    stack: Any
    customers: int
    say: Callable[[str], None]
    report: LifecycleReport = field(default_factory=LifecycleReport)
    seeded: list[Any] = field(default_factory=list)
    parallel_run_start: datetime | None = None
    vendors: runner.Vendors | None = None
    config: Any = None
    batch: runner.Batch | None = None
    plan: Any = None
    started: runner.Started | None = None
    streamed_from: datetime | None = None

    def migrating(self) -> list[Any]:
        return [c for c in self.plan.customers if c.can_migrate and c.internal_id is not None]


# --- the stages ------------------------------------------------------------------------------------------------------
def seed(world: MetronomeWorld) -> str:
    """Both seeds through the vendors' SDKs: a Stripe book on test clocks, the Metronome catalogue."""
    import stripe
    from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
    from billmig_local.emulators.stripe import advance_test_clocks
    from billmig_local.emulators.stripe.book_of_business import ensure_catalogue, populate
    from metronome import Metronome

    stack = world.stack
    # The daily parity schedule would fire on every day the clock walks through; it is switched on at month end.
    parity_schedule(stack, "DISABLED")
    # The parallel run starts at the month start right after the seeded history ends (an hour before it, so no
    # seeded event falls on the boundary): every event in the dual-write window goes through the router.
    world.parallel_run_start = _next_month(_month_start(stack.clock.now()))
    stack.move_clock(to=world.parallel_run_start.timestamp())
    url = stack.emulators["stripe"].url
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": url, "meter_events": url})
    book = ensure_catalogue(client, int(world.parallel_run_start.timestamp()) - 3600)
    world.seeded = populate(client, book, customers=world.customers, seed=DEMO_SEED, workers=READ_WORKERS)
    advance_test_clocks(url)  # the history ends at `as_of`; from here on every clock is at the world's instant
    with Metronome(bearer_token="local", base_url=stack.emulators["metronome"].url) as metronome:
        seed_catalogue(metronome)
    world.report.customers = len(world.seeded)
    expect([] if len(world.seeded) == world.customers else [f"seeded {len(world.seeded)} of {world.customers}"])
    grants = sum(len(s.credit_grants) for s in world.seeded)
    events = sum(s.meter_events for s in world.seeded)
    return f"{len(world.seeded)} Stripe customers on test clocks, {grants} credit grants, {events} meter events"


def plan(world: MetronomeWorld) -> str:
    """Resolve the config against both accounts and triage every customer; the awkward ones must be left out."""
    stack = world.stack
    world.vendors = runner.connect(
        "sk_test_local", stack.emulators["stripe"].url, "local-metronome-token", stack.emulators["metronome"].url
    )
    assert world.parallel_run_start is not None
    overrides = {
        "parallel_run_start": world.parallel_run_start.isoformat(),
        "cutover_at": _next_month(world.parallel_run_start).isoformat(),
        "concurrency": DEMO_CONCURRENCY,
    }
    world.config = runner.resolved_config(SAMPLE_CONFIG, world.vendors, overrides)
    world.batch = runner.Batch(BATCH_ID, [c.customer for c in world.seeded])
    world.plan = runner.plan(world.batch, world.config, world.vendors)
    for blocked in world.plan.blocked:
        world.say(f"  left out {blocked.stripe_customer_id}: {'; '.join(blocked.reasons)}")
        world.report.outcomes[f"left out ({blocked.bucket})"] += 1
    found = {c.stripe_customer_id for c in world.plan.blocked}
    # A customer without a payment method goes past due on its first unpaid invoice, whatever its profile.
    past_due = {
        c.customer for c in world.seeded if c.customer in found and _stripe_status(world, c.subscription) == "past_due"
    }
    expected = {c.customer for c in world.seeded if c.profile in BLOCKED_PROFILES} | past_due
    expect(
        [f"{c} was left out, its profile is {_profile(world, c)}" for c in sorted(found - expected)]
        + [f"{c} ({_profile(world, c)}) was not left out" for c in sorted(expected - found)]
    )
    return ", ".join(f"{k} {v}" for k, v in world.plan.totals().items())


def _stripe_status(world: MetronomeWorld, subscription: str) -> str:
    assert world.vendors is not None
    return world.vendors.stripe.subscription_status(subscription)


def _profile(world: MetronomeWorld, customer: str) -> str:
    return next((s.profile for s in world.seeded if s.customer == customer), "unknown")


def start(world: MetronomeWorld) -> str:
    assert world.batch is not None
    world.started = runner.start(world.batch, world.config, world.plan, exclude_blocked=True)
    want = len(world.batch.customer_ids) - len(world.plan.blocked)
    expect([] if world.started.customers == want else [f"started {world.started.customers}, expected {want}"])
    return f"execution {world.started.execution_arn.rsplit(':', 1)[-1]} for {world.started.customers} customers"


def parallel_run(world: MetronomeWorld) -> str:
    """Every started customer in its parallel run: one contract each, unbillable, its Stripe credits moved."""
    assert world.started is not None and world.vendors is not None
    status = runner.wait_for_parallel_run(
        BATCH_ID, world.started.customers, timeout=600, execution_arn=world.started.execution_arn
    )
    world.streamed_from = world.stack.clock.now_datetime().replace(microsecond=0)
    differences = [f"{customer} failed: {why}" for customer, why in sorted(status.failures.items())]
    metronome = world.vendors.metronome

    def held(customer: Any) -> tuple[Any, Any, list[Any]]:
        found = metronome.customer_by_alias(customer.internal_id)
        return customer, found, metronome.contracts(found.id) if found is not None else []

    table = Table("Stripe customer", "Metronome customer", "contract", "commits", "credits", title="in Metronome")
    with ThreadPoolExecutor(READ_WORKERS) as pool:
        rows = list(pool.map(held, world.migrating()))
    for customer, found, contracts in rows:
        stripe_remaining = sum(g["remaining"] for g in customer.grants if not g["target"].startswith("skipped"))
        balances = [b for c in contracts for b in c.balances]
        moved = sum(b.amount for b in balances)
        world.report.stripe_credit_remaining += stripe_remaining
        world.report.metronome_credit += moved
        world.report.contracts += len(contracts)
        if found is None or len(contracts) != 1:
            differences.append(f"{customer.stripe_customer_id}: {len(contracts)} contracts in Metronome, expected 1")
            continue
        if found.billable_status != "unbillable":
            differences.append(f"{customer.stripe_customer_id}: Metronome customer is {found.billable_status}")
        if moved != stripe_remaining:
            differences.append(
                f"{customer.stripe_customer_id}: Stripe credits remaining {stripe_remaining} cents, "
                f"Metronome holds {moved}"
            )
        table.add_row(
            customer.stripe_customer_id,
            f"{found.id[:8]} {customer.internal_id} {found.billable_status}",
            contracts[0].id[:8],
            " ".join(f"{b.amount / 100:.2f}" for b in balances if b.kind != "CREDIT"),
            " ".join(f"{b.amount / 100:.2f}" for b in balances if b.kind == "CREDIT"),
        )
    table.caption = (
        f"${world.report.metronome_credit / 100:,.2f} of Stripe credit balances moved "
        f"(Stripe remaining ${world.report.stripe_credit_remaining / 100:,.2f})"
    )
    world.console.print(table)
    in_run = status.phases.get("parallel_run", 0)
    world.report.outcomes["in the parallel run"] = in_run
    if in_run != world.started.customers:
        phases = dict(status.phases)
        differences.append(f"{in_run} of {world.started.customers} customers in the parallel run: {phases}")
    expect(differences)
    return (
        f"{in_run} customers in their parallel run, {world.report.contracts} contracts, "
        f"${world.report.metronome_credit / 100:,.2f} of credits moved, to the cent"
    )


def usage_month(world: MetronomeWorld) -> str:
    """The rest of the month's usage through the router, week by week on the world clock, then completeness."""
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
    from billmig.adapters.sqs_usage_queue import REASON_ATTRIBUTE
    from billmig.adapters.usage_totals import VendorUsageTotals
    from billmig.usage.completeness import check_completeness
    from billmig.usage.mapping import router_config_from_json

    from billmig_cli.usage_feed import queue_urls, routes_of_run, send_events

    stack = world.stack
    assert world.vendors is not None and world.streamed_from is not None
    router = router_config_from_json(ROUTER_CONFIG.read_text(), str(ROUTER_CONFIG))
    outputs = stack.outputs
    stack.client("ssm").put_parameter(
        Name=outputs["UsageRouterConfigParameter"], Value=router.model_dump_json(), Type="String", Overwrite=True
    )
    cutover = world.config.cutover_at
    stripe = world.vendors.stripe

    def streamed(customer: Any) -> Streamed:
        subscription = next(s for s in stripe.customer(customer.stripe_customer_id).subscriptions)
        end = subscription.current_period_end
        return Streamed(customer.internal_id, datetime.fromtimestamp(end, UTC) if end else None)

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        customers = list(pool.map(streamed, world.migrating()))
    queue_url, dead_letter_url = queue_urls(aws_target.DEFAULT_STACK)
    sqs = stack.client("sqs")
    sent = 0
    for week_start, week_end in steps(world.streamed_from, cutover - timedelta(minutes=1)):
        stack.move_clock(to=week_end.timestamp())
        events = week_of_usage(customers, week_start, week_end, seed=DEMO_SEED)
        sent += send_events(queue_url, events, lambda n: None)
        _drain(sqs, queue_url)
    world.report.events_streamed = sent
    dead = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"])
    differences = []
    if dead["Attributes"]["ApproximateNumberOfMessages"] != "0":
        got = sqs.receive_message(QueueUrl=dead_letter_url, MaxNumberOfMessages=3, MessageAttributeNames=["All"])
        reasons = [(m.get("MessageAttributes") or {}).get(REASON_ATTRIBUTE, {}) for m in got.get("Messages", [])]
        differences.append(
            f"{dead['Attributes']['ApproximateNumberOfMessages']} events dead-lettered, e.g. "
            + "; ".join(r.get("StringValue", "transient failures") for r in reasons)
        )
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=stack.client("dynamodb"))
    routes = list(routes_of_run(store.all_in_run(BATCH_ID)))
    totals = VendorUsageTotals.connect(
        "sk_test_local", stack.emulators["stripe"].url, "local-metronome-token", stack.emulators["metronome"].url
    )
    checked = check_completeness(BATCH_ID, routes, router, totals, now=stack.clock.now_datetime())
    world.report.usage_rows = Counter({k: v for k, v in checked.totals().items() if v})
    differences += [
        f"{row.internal_id} {row.meter} {row.period}: Stripe {row.stripe}, Metronome {row.metronome} ({row.status})"
        for row in checked.problems
    ]
    expect(differences)
    return (
        f"{sent} events for {len(customers)} customers through the router, "
        f"{len(checked.rows)} customer-meter-months match in both vendors"
    )


def _drain(sqs: Any, queue_url: str) -> None:
    import time

    deadline = time.monotonic() + DRAIN_SECONDS
    delay = 0.2  # each look counts every queued message in moto: look seldom
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        if all(attributes[n] == "0" for n in names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the usage queue still holds {attributes} after {DRAIN_SECONDS:.0f} s")
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def month_boundary(world: MetronomeWorld) -> str:
    """The world clock past the cutover instant: the execution leaves its wait; each side's invoices per period."""
    assert world.started is not None
    cutover = world.config.cutover_at
    moved = world.stack.move_clock(to=(cutover + timedelta(hours=1)).timestamp())
    sfn = world.stack.client("stepfunctions")
    ended = executions.wait(sfn, world.started.execution_arn, timeout=300)
    differences = [] if ended["status"] == "SUCCEEDED" else [f"the execution ended {ended['status']}"]
    _count_invoices(world)
    fired = ", ".join(f["schedule"].rsplit("/", 1)[-1] for f in moved["fired"]) or "no schedule"
    expect(differences)
    return f"clock at {moved['iso']}, execution {ended['status']} past WaitForCutover; fired: {fired}"


def _count_invoices(world: MetronomeWorld) -> None:
    """Per period (the month a period starts in): the migrated customers' Stripe invoices, their finalized
    Metronome invoices, and of those the ones Metronome delivered to Stripe."""
    import httpx
    from metronome import Metronome

    assert world.vendors is not None
    stripe, metronome = world.vendors.stripe, world.vendors.metronome
    url = world.stack.emulators["metronome"].url
    delivered = {d["invoice_id"] for d in httpx.get(f"{url}/_metronome/stripe-deliveries", timeout=30).json()}
    client = Metronome(bearer_token="local-metronome-token", base_url=url)

    def counted(customer: Any) -> list[tuple[str, str]]:
        found = stripe.customer(customer.stripe_customer_id)
        seen = [
            ("stripe", _period(i.period_start))
            for s in found.subscriptions
            for i in stripe.invoices(s.id)
            if i.status != "draft"
        ]
        held = metronome.customer_by_alias(customer.internal_id)
        for invoice in client.v1.customers.invoices.list(customer_id=held.id) if held else []:
            if invoice.status == "FINALIZED" and invoice.start_timestamp is not None:
                seen.append(("metronome", _period(invoice.start_timestamp)))
                if invoice.id in delivered:
                    seen.append(("delivered_to_stripe", _period(invoice.start_timestamp)))
        return seen

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        found = [seen for rows in pool.map(counted, world.migrating()) for seen in rows]
    invoices: dict[str, PeriodInvoices] = {}
    for side, period in found:
        counts = invoices.setdefault(period, PeriodInvoices())
        setattr(counts, side, getattr(counts, side) + 1)
    world.report.invoices = invoices


def parity_schedule(stack: Any, state: str) -> dict[str, Any]:
    """Switch the stack's daily parity schedule (EventBridge Scheduler) on or off; returns the schedule."""
    scheduler = stack.client("scheduler")
    name = f"billmig-parity-{stack.settings.parameters.get('Stage', 'local')}"
    try:
        found: dict[str, Any] = scheduler.get_schedule(Name=name)
    except scheduler.exceptions.ResourceNotFoundException as exc:
        raise NotAvailable("the parity state machine and its EventBridge schedule") from exc
    keep = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "Description")
    scheduler.update_schedule(Name=name, State=state, **{k: found[k] for k in keep if k in found})
    return found


def parity_run(world: MetronomeWorld) -> str:
    """The parity schedule on again, the clock past its next firing: EventBridge Scheduler starts the parity run."""
    from billmig_local.schedule_expressions import next_fire

    from billmig_cli.commands.parity import read_report

    stack = world.stack
    schedule = parity_schedule(stack, "ENABLED")
    now = stack.clock.now_datetime()
    due = next_fire(schedule["ScheduleExpression"], now, anchor=now, timezone="UTC")
    assert due is not None
    try:
        moved = stack.move_clock(to=due.timestamp() + 1)
    finally:  # as it was deployed (locally DISABLED: a later clock jump would start a run per day it passes)
        parity_schedule(stack, schedule.get("State", "DISABLED"))
    firings = [f for f in moved["fired"] if "parity" in f["schedule"]]
    expect([] if len(firings) == 1 else [f"{len(firings)} parity runs fired at {due.isoformat()}, expected one"])
    arn = firings[0]["execution_arn"]
    ended = executions.wait(stack.client("stepfunctions"), arn, timeout=600)
    expect([] if ended["status"] == "SUCCEEDED" else [f"the parity run ended {ended['status']}"])
    report = read_report(arn.rsplit(":", 1)[-1], stack_name=aws_target.DEFAULT_STACK)
    summary = report["summary"]
    world.report.parity = (
        f"{report['status_detail']}: {summary['customers_checked']} checked, "
        f"{summary['customers_within_tolerance']} within tolerance, {summary['customers_held_back']} held back, "
        f"{summary['customers_failed']} failed; {summary['differences']} differences"
    )
    in_run = world.report.outcomes["in the parallel run"]
    expect(
        ([] if summary["customers_failed"] == 0 else [f"{summary['customers_failed']} parity checks failed"])
        + ([] if summary["customers_checked"] == in_run else [f"{summary['customers_checked']} of {in_run} checked"])
    )
    return f"fired at {due.isoformat()}: {world.report.parity}"


def not_built(piece: str) -> Callable[[MetronomeWorld], str]:
    def stage(world: MetronomeWorld) -> str:
        raise NotAvailable(piece)

    return stage


STAGES: list[Stage[MetronomeWorld]] = [
    Stage("seed Stripe and Metronome", seed),
    Stage("plan", plan),
    Stage("start", start),
    Stage("parallel run", parallel_run),
    Stage("a month of usage through the router", usage_month),
    Stage("past the month boundary", month_boundary),
    Stage("scheduled parity run", parity_run),
    Stage("cutover", not_built("the cutover gate and the month-boundary cutover")),
    Stage("the first Metronome invoice", not_built("the cutover (billable from the next period)")),
    Stage("clean-up", not_built("the batch clean-up")),
]


def run_metronome_act(
    console: Console, stack: Any, customers: int = 50, *, progress: Callable[[str], None] | None = None
) -> LifecycleReport:
    """The lifecycle on `stack`; the report says which stages ran and whether any was surprised."""
    aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
    say = progress or (lambda line: console.print(line, soft_wrap=True))
    world = MetronomeWorld(console, stack, customers, say)
    run_stages(console, world, STAGES, world.report)
    return world.report
