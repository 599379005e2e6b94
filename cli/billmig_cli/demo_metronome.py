"""The demo's Metronome act: a Stripe book's lifecycle from Stripe to Metronome, as named stages (see
`demo_lifecycle`): seed both vendors, plan, start, the parallel run with the credits moved, a month of usage through
the router, the world clock past the month boundary, the scheduled parity run, the cutover a month later (the gate
fed by that parity run), the first Metronome invoices, and the batch's clean-up."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from billmig.progress import StepStatus, SubjectState
from billmig.steps import Step
from billmig.usage.routing import HELD_BACK
from rich.console import Console
from rich.table import Table

from billmig_cli import aws_target, executions
from billmig_cli import metronome_migration as runner
from billmig_cli.demo_lifecycle import LifecycleReport, NotAvailable, PeriodInvoices, Stage, expect, run_stages
from billmig_cli.demo_usage import Streamed, steps, week_of_usage

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "events" / "metronome" / "migration.json"
ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"
DEMO_REPORTS = REPO / ".local" / "demo"  # each parity run's report, as `billmig parity report` writes it
DEMO_SEED = 7
BATCH_ID = "demo-metronome"
# Map and Lambda concurrency for the demo: on two cores more parallel Tasks only add cold starts.
DEMO_CONCURRENCY = 4
READ_WORKERS = 4
DEMO_CUTOVER_LEAD_HOURS = 24 * 7
WALK_GROUP = 4 * DEMO_CONCURRENCY  # customers whose post-cutover step the clock brings due at once
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
    parity_held_back: set[str] = field(default_factory=set)  # whom the scheduled parity run did not pass
    scheduled_parity_at: datetime | None = None  # when the schedule's parity run fired
    released: dict[str, datetime] = field(default_factory=dict)  # cut over: Stripe customer -> its boundary

    def first_boundary(self) -> datetime:
        """The end of the first parallel month: the usage streamed, and the period the parity run checks."""
        assert self.parallel_run_start is not None
        return _next_month(self.parallel_run_start)

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
        # the boundary after the first parallel month: its periods have closed and parity has run when the gate decides
        "cutover_at": _next_month(_next_month(world.parallel_run_start)).isoformat(),
        # The migration Map at the Lambda concurrency (the cutover Map is as wide as the batch: its iterations wait).
        "concurrency": DEMO_CONCURRENCY,
        # Decided a week ahead (the longest lead the config allows): the boundaries of a week share one decision
        # instant, so the clock walks the anniversary-billed month in a few moves, not one a day.
        "cutover_lead_hours": DEMO_CUTOVER_LEAD_HOURS,
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
        # A threshold customer's grants stay in Stripe until its cutover (the cutover stage checks their move).
        stripe_remaining = sum(g["remaining"] for g in customer.grants if g["target"] in ("commit", "credit"))
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
    for week_start, week_end in steps(world.streamed_from, world.first_boundary() - timedelta(minutes=1)):
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
        delay = min(0.5, delay * 1.5)


def month_boundary(world: MetronomeWorld) -> str:
    """The world clock past the first month's boundary and its late-event window: its periods close; the execution
    still waits for the cutover decision; each side's invoices per period."""
    assert world.started is not None
    late = timedelta(hours=router_config_late_hours())
    moved = world.stack.move_clock(to=(world.first_boundary() + late + timedelta(hours=1)).timestamp())
    sfn = world.stack.client("stepfunctions")
    state = sfn.describe_execution(executionArn=world.started.execution_arn)["status"]
    differences = [] if state == "RUNNING" else [f"the execution is {state}, expected waiting for the cutover"]
    _count_invoices(world)
    fired = ", ".join(f["schedule"].rsplit("/", 1)[-1] for f in moved["fired"]) or "no schedule"
    expect(differences)
    return (
        f"clock at {moved['iso']} (the late-event window passed), execution {state} in WaitForCutover; fired: {fired}"
    )


def router_config_late_hours() -> int:
    from billmig.usage.mapping import router_config_from_json

    return router_config_from_json(ROUTER_CONFIG.read_text(), str(ROUTER_CONFIG)).late_event_window_hours


@dataclass(frozen=True)
class CustomerInvoices:
    """One migrated customer's invoices: (side, period) per invoice, and where each side's billing stops/starts."""

    stripe_customer_id: str
    seen: list[tuple[str, str]]
    last_stripe_end: int | None  # the latest end of its subscription's invoices
    first_delivered_start: int | None  # the earliest start of a Metronome invoice delivered to Stripe


def _count_invoices(world: MetronomeWorld) -> list[CustomerInvoices]:
    """Per period (the month a period starts in): the migrated customers' Stripe subscription invoices, their
    finalized Metronome invoices, and the Stripe invoices Metronome delivered (metadata `metronome_id`)."""
    import stripe as stripe_sdk
    from metronome import Metronome

    assert world.vendors is not None
    stripe, metronome = world.vendors.stripe, world.vendors.metronome
    url = world.stack.emulators["metronome"].url
    client = Metronome(bearer_token="local-metronome-token", base_url=url)
    stripe_url = world.stack.emulators["stripe"].url
    stripe_client = stripe_sdk.StripeClient("sk_test_local", base_addresses={"api": stripe_url})

    def counted(customer: Any) -> CustomerInvoices:
        found = stripe.customer(customer.stripe_customer_id)
        issued = [i for s in found.subscriptions for i in stripe.invoices(s.id) if i.status != "draft"]
        seen = [("stripe", _period(i.period_start)) for i in issued]
        held = metronome.customer_by_alias(customer.internal_id)
        starts: dict[str, int] = {}
        for invoice in client.v1.customers.invoices.list(customer_id=held.id) if held else []:
            if invoice.status == "FINALIZED" and invoice.start_timestamp is not None:
                seen.append(("metronome", _period(invoice.start_timestamp)))
                starts[invoice.id] = int(invoice.start_timestamp.timestamp())
        listed = stripe_client.v1.invoices.list(params={"customer": customer.stripe_customer_id, "limit": 100})
        delivered = [
            starts[i.metadata["metronome_id"]]
            for i in listed.auto_paging_iter()
            if i.metadata and i.metadata.to_dict().get("metronome_id") in starts
        ]
        seen += [("delivered_to_stripe", _period(start)) for start in delivered]
        return CustomerInvoices(
            customer.stripe_customer_id,
            seen,
            max((i.period_end for i in issued), default=None),
            min(delivered, default=None),
        )

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        customers = list(pool.map(counted, world.migrating()))
    invoices: dict[str, PeriodInvoices] = {}
    for side, period in (seen for c in customers for seen in c.seen):
        counts = invoices.setdefault(period, PeriodInvoices())
        setattr(counts, side, getattr(counts, side) + 1)
    world.report.invoices = invoices
    return customers


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
    """The daily schedule's last run before the batch decides: the clock (the schedule off) to a day before the first
    decision instant, then the schedule on and the clock past its next firing: EventBridge Scheduler starts the parity
    run whose results the gates read (each day before it would have checked the same closed periods, less of them)."""
    from billmig_local.schedule_expressions import next_fire

    stack = world.stack
    schedule = parity_schedule(stack, "DISABLED")
    first_decision = world.config.cutover_at - timedelta(hours=world.config.cutover_lead_hours)
    now = stack.clock.now_datetime()
    eve = max(now, first_decision - timedelta(days=1))
    due = next_fire(schedule["ScheduleExpression"], eve, anchor=eve, timezone="UTC")
    assert due is not None
    if due >= first_decision:  # a schedule sparser than daily: its next firing from now
        due = next_fire(schedule["ScheduleExpression"], now, anchor=now, timezone="UTC")
        assert due is not None
    if due.timestamp() - 60 > stack.clock.now():
        stack.move_clock(to=due.timestamp() - 60)
    parity_schedule(stack, "ENABLED")
    try:
        moved = stack.move_clock(to=due.timestamp() + 1)
    finally:  # as it was deployed (locally DISABLED: a later clock jump would start a run per day it passes)
        parity_schedule(stack, schedule.get("State", "DISABLED"))
    firings = [f for f in moved["fired"] if "parity" in f["schedule"]]
    expect([] if len(firings) == 1 else [f"{len(firings)} parity runs fired at {due.isoformat()}, expected one"])
    summary = _parity_report(world, firings[0]["execution_arn"])
    world.scheduled_parity_at = due
    in_run = world.report.outcomes["in the parallel run"]
    expect(
        ([] if summary["customers_failed"] == 0 else [f"{summary['customers_failed']} parity checks failed"])
        + ([] if summary["customers_checked"] == in_run else [f"{summary['customers_checked']} of {in_run} checked"])
    )
    return f"fired at {due.isoformat()}: {world.report.parity}"


def _parity_report(world: MetronomeWorld, arn: str, *, again: bool = False) -> dict[str, Any]:
    """Wait for a parity run; its summary into the report (`again`: after the first run's, which checked the whole
    parallel run), whom it holds back into the world."""
    from billmig_cli import parity_report

    ended = executions.wait(world.stack.client("stepfunctions"), arn, timeout=600)
    expect([] if ended["status"] == "SUCCEEDED" else [f"the parity run ended {ended['status']}"])
    # the run's own JSON, CSV and HTML page from S3, kept for a reader after the embedded stack is gone
    local = parity_report.fetch_report(arn.rsplit(":", 1)[-1], DEMO_REPORTS, stack_name=aws_target.DEFAULT_STACK)
    report = local.document
    summary: dict[str, Any] = report["summary"]
    line = (
        f"{report['status_detail']}: {summary['customers_checked']} checked, "
        f"{summary['customers_within_tolerance']} within tolerance, {summary['customers_held_back']} held back, "
        f"{summary['customers_failed']} failed; {summary['differences']} differences (report {local.html_path})"
    )
    world.report.parity = f"{world.report.parity}; then, the late periods closed, {line}" if again else line
    world.parity_held_back = {c["stripe_customer_id"] for c in report["customers"] if c["held_back"]}
    return summary


def _progress_of(world: MetronomeWorld) -> dict[str, Any]:
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    outputs = world.stack.outputs
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=world.stack.client("dynamodb"))
    return {p.subject: p for p in store.all_in_run(BATCH_ID)}


def _succeeded(progress: Any, step: Step) -> bool:
    record = progress.steps.get(step)
    return record is not None and record.status is StepStatus.SUCCEEDED


def _outcome(progress: Any, step: Step) -> str | None:
    record = progress.steps.get(step)
    return None if record is None else record.outcome


def _failed(progress: Any) -> bool:
    return progress.state is SubjectState.FAILED


def cutover(world: MetronomeWorld) -> str:
    """The clock to each boundary's decision instant (`cutover_lead_hours` before it, a customer's own boundary on
    its anniversary), then the threshold customers' boundary: the gate holds back whom parity did not pass, and the
    others end their Stripe subscription at the period end and switch to Metronome."""
    from billmig.metronome.contract_terms import moved_at_cutover
    from billmig.metronome.cutover import period_boundary

    assert world.vendors is not None and world.started is not None
    stripe, stack = world.vendors.stripe, world.stack
    lead = timedelta(hours=world.config.cutover_lead_hours)
    in_run = {s for s, p in _progress_of(world).items() if p.phase == "parallel_run"}

    def planned(customer: str) -> tuple[str, datetime, bool]:
        # the one it migrated with; past due by now if its parallel-run invoice went unpaid (no payment method)
        subscriptions = stripe.customer(customer).subscriptions
        subscription = next((s for s in subscriptions if s.status == "active"), subscriptions[0])
        return customer, period_boundary(subscription, world.config.cutover_at), moved_at_cutover(subscription)

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        boundaries = {c: (b, threshold) for c, b, threshold in pool.map(planned, sorted(in_run))}

    # The schedule's last run before the batch's decision instant checked every period closed by then; without it
    # (the stage not run), a run an hour before, as the daily schedule would have made (it is off while the clock
    # walks), so no gate asks an empty ledger.
    from billmig.parity.run import ParityFilters

    from billmig_cli.commands.parity import start_run

    first_decision = world.config.cutover_at - lead
    if world.scheduled_parity_at is not None and world.scheduled_parity_at < first_decision:
        before = world.scheduled_parity_at
    else:
        before = first_decision - timedelta(hours=1)
        if before.timestamp() > stack.clock.now():
            stack.move_clock(to=before.timestamp())
        arn = start_run(ParityFilters(batch_id=BATCH_ID), stack_name=aws_target.DEFAULT_STACK, now=before)
        _parity_report(world, arn)
    # A customer billed late in the month closes its last full period (and its late-event window) after that run but
    # decides weeks later, at its own boundary: a second run once those periods have closed, as a day of the schedule.
    window = timedelta(hours=router_config_late_hours())
    closes = {c: _month_before(b) + window for c, (b, _) in boundaries.items()}
    late = {c for c, at in closes.items() if at > before}
    early_held = set(world.parity_held_back) - late
    again = max(closes.values()) + timedelta(hours=1)

    def parity_again() -> None:
        arn = start_run(ParityFilters(batch_id=BATCH_ID), stack_name=aws_target.DEFAULT_STACK, now=again)
        _parity_report(world, arn, again=bool(world.report.parity))
        world.parity_held_back = early_held | (world.parity_held_back & late)

    def settled(through: datetime, *, at_boundary: bool) -> Callable[[list[Any]], list[str]]:
        """Who, of the customers whose boundary is `through` or earlier, has not settled; before the clock is past
        the boundary, a released threshold customer waits for it."""

        def pending(subjects: list[Any]) -> list[str]:
            def done(p: Any) -> bool:
                threshold = boundaries[p.subject][1]
                if _failed(p) or p.phase == HELD_BACK or _succeeded(p, Step.METRONOME_CUT_OVER):
                    return True
                return not at_boundary and threshold and _succeeded(p, Step.METRONOME_CUTOVER_GATE)

            ours = [p for p in subjects if p.subject in boundaries and boundaries[p.subject][0] <= through]
            return [p.subject for p in ours if not done(p)]

        return pending

    def acted(boundary: datetime) -> Callable[[list[Any]], list[str]]:
        """The threshold customers of `boundary` that have not settled (they end Stripe at the boundary itself)."""

        def pending(subjects: list[Any]) -> list[str]:
            ours = [p for p in subjects if boundaries.get(p.subject) == (boundary, True)]
            return [
                p.subject
                for p in ours
                if not (_failed(p) or p.phase == HELD_BACK or _succeeded(p, Step.METRONOME_CUT_OVER))
            ]

        return pending

    # Each boundary's customers decided before the clock passes it (past it, the gate takes the next boundary); a
    # boundary's threshold customers at the boundary itself, so Stripe's test clock ends their subscription then.
    decisions = [(b - lead + timedelta(minutes=10), b) for b in {b for b, _ in boundaries.values()}]
    barriers: list[tuple[datetime, Callable[[list[Any]], list[str]] | None]] = [
        (b, acted(b)) for b, threshold in set(boundaries.values()) if threshold
    ]
    if late:
        barriers.append((again, None))
    instants = [(at, settled(through, at_boundary=False)) for at, through in _decision_groups(decisions, barriers)]
    for instant, pending in sorted(instants + barriers, key=lambda item: item[0]):
        if instant.timestamp() > stack.clock.now():
            stack.move_clock(to=instant.timestamp())
        if pending is None:
            parity_again()
        else:
            runner.wait_for_progress(BATCH_ID, pending, timeout=300)
    last = max(b for b, _ in boundaries.values())
    stack.move_clock(to=(last + timedelta(minutes=10)).timestamp())
    progress = {p.subject: p for p in runner.wait_for_progress(BATCH_ID, settled(last, at_boundary=True), timeout=300)}

    held = {c: p.phase_reason or "no reason recorded" for c, p in progress.items() if p.phase == HELD_BACK}
    failed = {c for c, p in progress.items() if _failed(p)}
    world.released = {
        c: datetime.fromisoformat(p.steps[Step.METRONOME_CUTOVER_GATE].vendor_ids["boundary"].replace("Z", "+00:00"))
        for c, p in progress.items()
        if _succeeded(p, Step.METRONOME_CUT_OVER)
    }
    differences = [f"{c} failed: {runner.status(BATCH_ID).failures.get(c, 'no error recorded')}" for c in failed]
    differences += [f"{c} held back ({held[c]}), parity passed it" for c in sorted(set(held) - world.parity_held_back)]
    differences += [f"{c} released, parity held it back" for c in sorted(world.parity_held_back & set(world.released))]
    for c, boundary in sorted(world.released.items()):
        subscription = next(s for s in stripe.customer(c).subscriptions if s.id)
        if not (subscription.cancel_at_period_end or subscription.cancel_at or subscription.ended_at):
            differences.append(f"{c}: Stripe subscription {subscription.id} does not end at {boundary:%Y-%m-%d}")
    differences += _threshold_balances_moved(world, [c for c in world.released if boundaries[c][1]])
    for c, reason in sorted(held.items()):
        world.say(f"  held back {c}: {reason}")
    world.report.outcomes.pop("in the parallel run", None)
    world.report.outcomes["cut over"] = len(world.released)
    world.report.outcomes["held back"] = len(held)
    if failed:
        world.report.outcomes["failed at the cutover"] = len(failed)
    expect(differences)
    days = sorted({b.date() for b in world.released.values()})
    span = f"{days[0]}..{days[-1]}" if days else "none"
    return (
        f"{len(world.released)} cut over (boundaries {span}, Stripe ending at the period end), {len(held)} held back "
        f"as parity said"
    )


def _decision_groups(
    decisions: list[tuple[datetime, datetime]], barriers: list[tuple[datetime, Any]]
) -> list[tuple[datetime, datetime]]:
    """Boundaries' decision instants (instant, boundary) merged into as few clock moves as keep each boundary
    decided before it passes: a group moves to its latest decision instant, which must come before its earliest
    boundary, and never across a barrier (a threshold boundary, a parity run). Returns (instant, latest boundary)."""
    groups: list[tuple[datetime, datetime, datetime]] = []  # (instant, earliest boundary, latest boundary)
    stops = sorted(at for at, _ in barriers)
    for at, boundary in sorted(decisions):
        if groups:
            instant, earliest, latest = groups[-1]
            crossed = any(instant < stop <= at for stop in stops)
            if at < earliest and not crossed:
                groups[-1] = (at, earliest, max(latest, boundary))
                continue
        groups.append((at, boundary, boundary))
    return [(instant, latest) for instant, _, latest in groups]


def _month_before(boundary: datetime) -> datetime:
    """The period boundary a month before `boundary` (same day and time, the day clamped to the shorter month)."""
    year, month = (boundary.year - 1, 12) if boundary.month == 1 else (boundary.year, boundary.month - 1)
    return boundary.replace(year=year, month=month, day=min(boundary.day, calendar.monthrange(year, month)[1]))


def _threshold_balances_moved(world: MetronomeWorld, customers: list[str]) -> list[str]:
    """The threshold customers' Stripe balances left after Stripe's final invoice, now in their contract: grant by grant
    (a balance is named after its grant), those still unexpired (an expired grant has no balance left in Stripe)."""
    assert world.vendors is not None
    stripe, metronome = world.vendors.stripe, world.vendors.metronome
    now = world.stack.clock.now()
    internal = {c.stripe_customer_id: c.internal_id for c in world.migrating()}
    differences = []
    for customer in sorted(customers):
        grants = {
            g.id: g.remaining
            for g in stripe.credit_grants(customer)
            if g.voided_at is None and (g.expires_at is None or g.expires_at > now)
        }
        found = metronome.customer_by_alias(internal[customer])
        held = {b.name: b.amount for k in (metronome.contracts(found.id) if found else []) for b in k.balances}
        left = sum(r for r in grants.values() if r > 0)
        moved = sum(held.get(g, 0) for g in grants)
        world.report.stripe_credit_remaining += left
        world.report.metronome_credit += moved
        for grant, remaining in sorted(grants.items()):
            holds = held.get(grant, 0)
            if holds != max(remaining, 0):
                differences.append(f"{customer} (threshold) {grant}: Stripe left {remaining} cents, Metronome {holds}")
    return differences


def _walk_released(world: MetronomeWorld, instants: dict[str, datetime], step: Step) -> dict[str, Any]:
    """The clock through the instants of `instants` (released customer -> when its `step` is due, a step that may run
    any time after it), a few customers at a time: each group settled (`step` done, or failed) before the next, so
    the Waits fire a group at a time, not the whole batch at once over the few local Lambda environments (all at once,
    the credit checks exhausted their throttling retries)."""
    done: dict[str, Any] = {}
    ordered = sorted(instants, key=lambda c: instants[c])
    for first in range(0, len(ordered), WALK_GROUP):
        group = set(ordered[first : first + WALK_GROUP])
        due = max(instants[c] for c in group) + timedelta(minutes=10)
        if due.timestamp() > world.stack.clock.now():
            world.stack.move_clock(to=due.timestamp())

        def pending(subjects: list[Any], group: set[str] = group) -> list[str]:
            return [p.subject for p in subjects if p.subject in group and not _failed(p) and not _succeeded(p, step)]

        done.update({p.subject: p for p in runner.wait_for_progress(BATCH_ID, pending, timeout=300)})
    return done


def _credit_at_boundaries(world: MetronomeWorld) -> tuple[int, int]:
    """The cut-over customers' credit at their boundary: what Stripe left of their grants, and what their moved
    Metronome balances held then (granted less what the invoices before the boundary drew)."""
    from billmig.metronome.balance_settlement import drawn, left_in_stripe

    assert world.vendors is not None
    stripe, metronome = world.vendors.stripe, world.vendors.metronome
    internal = {c.stripe_customer_id: c.internal_id for c in world.migrating()}

    def of(item: tuple[str, datetime]) -> tuple[int, int]:
        customer, boundary = item
        grants = {g.id: g for g in stripe.credit_grants(customer)}
        found = metronome.customer_by_alias(internal[customer])
        assert found is not None
        shadow = drawn(metronome.invoices(found.id), boundary, before=True)
        held = sum(
            b.amount - shadow.get(b.id, 0)
            for k in metronome.contracts(found.id)
            for b in k.balances
            if b.name in grants
        )
        return sum(left_in_stripe(g, boundary) for g in grants.values()), held

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        sums = list(pool.map(of, sorted(world.released.items())))
    return sum(s for s, _ in sums), sum(m for _, m in sums)


def first_metronome_invoice(world: MetronomeWorld) -> str:
    """The clock past every released customer's boundary + 25 h (the moved balances settled to what Stripe left),
    then past its next boundary + 25 h: the credit checks run; Metronome's invoices from the boundary reach Stripe,
    and no period is billed by both."""
    from billmig.metronome.cutover import FIRST_CYCLE_SETTLED, LAST_PERIODS_SETTLED

    assert world.vendors is not None
    if not world.released:
        return "nobody was cut over"
    progress = _progress_of(world)

    def recorded(customer: str, key: str) -> datetime:
        value = progress[customer].steps[Step.METRONOME_CUTOVER_GATE].vendor_ids[key]
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    settled = _walk_released(
        world, {c: b + LAST_PERIODS_SETTLED for c, b in world.released.items()}, Step.METRONOME_SETTLE_BALANCES
    )
    adjusted = [c for c, p in settled.items() if _outcome(p, Step.METRONOME_SETTLE_BALANCES) == "settled"]
    world.report.balances_settled = len(adjusted)
    world.report.boundary_credit = _credit_at_boundaries(world)
    differences = (
        []
        if len(set(world.report.boundary_credit)) == 1
        else [f"credits at the boundary {world.report.boundary_credit}"]
    )
    done = _walk_released(world, {c: recorded(c, "check_at") for c in world.released}, Step.METRONOME_CREDIT_CHECK)
    due = max(recorded(c, "check_at") for c in world.released)
    differences += [
        f"{c} failed: {runner.status(BATCH_ID).failures.get(c, 'no error recorded')}"
        for c in world.released
        if _failed(done[c])
    ]
    checked = [c for c in world.released if _succeeded(done[c], Step.METRONOME_CREDIT_CHECK)]
    for customer in _count_invoices(world):
        boundary = world.released.get(customer.stripe_customer_id)
        if boundary is None:
            continue
        at = int(boundary.timestamp())
        if customer.last_stripe_end != at:
            differences.append(
                f"{customer.stripe_customer_id}: its last Stripe invoice ends at {customer.last_stripe_end}, "
                f"not its boundary {boundary.isoformat()}"
            )
        if customer.first_delivered_start != at:
            differences.append(
                f"{customer.stripe_customer_id}: its first Metronome invoice in Stripe starts at "
                f"{customer.first_delivered_start}, not its boundary {boundary.isoformat()}"
            )
    expect(differences)
    delivered = sum(p.delivered_to_stripe for p in world.report.invoices.values())
    return (
        f"{len(adjusted)} customers' moved balances settled to what Stripe left after its final invoice; clock at "
        f"{due.isoformat()} (next boundary + {FIRST_CYCLE_SETTLED.total_seconds() / 3600:.0f} h): "
        f"{len(checked)} credit checks passed, {delivered} Metronome invoices delivered to Stripe, "
        "no period billed twice"
    )


def clean_up(world: MetronomeWorld) -> str:
    """The execution ends with CleanUpBatch: the cut-over customers `cleaned_up`, the Stripe prices and meters no
    live subscription bills archived and deactivated (the held-back customers keep theirs)."""
    import json

    assert world.started is not None and world.vendors is not None
    sfn = world.stack.client("stepfunctions")
    ended = executions.wait(sfn, world.started.execution_arn, timeout=300)
    if ended["status"] != "SUCCEEDED":
        expect([f"the execution ended {ended['status']}"])
    result = json.loads(ended.get("output") or "{}").get("cleanup") or {}
    plan = result.get("plan") or {}
    stripe = world.vendors.stripe
    prices = {p.id: p.active for p in stripe.prices()}
    meters = {m.id: m.status for m in stripe.meters()}
    progress = _progress_of(world)
    differences = (
        [f"clean-up: {result.get('outcome')!r}, expected cleaned_up"] if result.get("outcome") != "cleaned_up" else []
    )
    differences += [f"price {p} still active" for p in plan.get("archive_prices", []) if prices.get(p)]
    differences += [
        f"meter {m} is {meters.get(m)}" for m in plan.get("deactivate_meters", []) if meters.get(m) != "inactive"
    ]
    differences += [
        f"{c} not cleaned_up ({progress[c].phase})" for c in world.released if progress[c].phase != "cleaned_up"
    ]
    if set(plan.get("customers", [])) != set(world.released):
        differences.append(f"clean-up planned for {len(plan.get('customers', []))}, {len(world.released)} cut over")
    batch = result.get("batch") or {}
    if batch.get("cut_over") != len(world.released):
        differences.append(f"the execution's outcome: {batch.get('cut_over')} cut over, {len(world.released)} were")
    world.report.cleanup = (
        f"{len(plan.get('customers', []))} customers cleaned_up, {len(plan.get('archive_prices', []))} prices archived "
        f"({len(plan.get('keep_prices', {}))} kept), {len(plan.get('deactivate_meters', []))} meters deactivated "
        f"({len(plan.get('keep_meters', {}))} kept)"
    )
    expect(differences)
    return f"execution SUCCEEDED, {batch.get('summary')}; {world.report.cleanup}"


STAGES: list[Stage[MetronomeWorld]] = [
    Stage("seed Stripe and Metronome", seed),
    Stage("plan", plan),
    Stage("start", start),
    Stage("parallel run", parallel_run),
    Stage("a month of usage through the router", usage_month),
    Stage("past the month boundary", month_boundary),
    Stage("scheduled parity run", parity_run),
    Stage("cutover", cutover),
    Stage("the first Metronome invoice", first_metronome_invoice),
    Stage("clean-up", clean_up),
]


def run_metronome_act(
    console: Console,
    stack: Any,
    customers: int = 50,
    *,
    progress: Callable[[str], None] | None = None,
    stages: list[Stage[MetronomeWorld]] | None = None,
) -> LifecycleReport:
    """The lifecycle on `stack`; the report says which stages ran and whether any was surprised."""
    aws_target.pin_local_endpoint(stack.endpoint, stack.settings.region)
    say = progress or (lambda line: console.print(line, soft_wrap=True))
    world = MetronomeWorld(console, stack, customers, say)
    run_stages(console, world, STAGES if stages is None else stages, world.report)
    return world.report
