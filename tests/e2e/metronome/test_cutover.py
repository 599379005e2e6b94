"""The cutover on the local stack, on one timeline moved by the world clock: the parallel run, the decision a day
(the state machine's batch: two days) before the customers' period boundary, the boundary, and the first Metronome
cycle after it. Customers released by parity, held back (and released by an approval), on a hard cutover (its usage
through the router Lambda), on a subscription schedule and on threshold billing, and one whose Stripe subscription
was cancelled during the parallel run (failed at its cutover, reported); a crash after every vendor write of the
cutover steps, then a rerun; a 20% fault storm over the state machine's cutover. Everything is checked through the
vendors' SDKs."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.usage_totals import VendorUsageTotals
from billmig.metronome.balance_settlement import settle_balances
from billmig.metronome.contract_terms import rfc3339
from billmig.metronome.credit_check import check_credits
from billmig.metronome.cutover import (
    LAST_PERIODS_SETTLED,
    CutoverDecision,
    decide_cutover,
    end_stripe_at_period_end,
    set_billable_at_boundary,
    switch_phase,
)
from billmig.metronome.errors import BalanceSettlementTooLate, CreditCheckFailed, CutoverTooEarly
from billmig.metronome.resolution import ResolvedConfig
from billmig.metronome.snapshot import CustomerStepRequest
from billmig.metronome.storage import MigrationRun, run_key
from billmig.metronome.threshold_cutover import enable_auto_recharge, end_stripe_now, move_balance
from billmig.parity.verdicts import Approval, Cause, Difference, PeriodParity
from billmig.progress import StepStatus
from billmig.steps import Step
from billmig.stripe_source.port import WRITE_METHODS as STRIPE_WRITES
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.routing import CustomerRoute, Destination
from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner
from billmig_local.emulators.control_plane import FaultRule
from metronome_book import (  # noqa: F401
    ROUTER_CONFIG,
    Book,
    CrashAfter,
    SimulatedCrash,
    book,
    fresh_customer,
    next_month,
)
from suite import metronome_receipts, until
from test_usage_backfill import ids, route, stripe_accepted, usage

PERIOD_END_CRASHES = [("stripe", "cancel_at_period_end"), ("metronome", "set_billable_status")]
SCHEDULE_CRASHES = [("stripe", "create_schedule"), ("stripe", "end_schedule_with_cancel")]
THRESHOLD_CRASHES = [
    ("stripe", "cancel_subscription"),
    ("metronome", "edit_contract"),
    ("metronome", "edit_contract#2"),
]


RERUN_WRITES = {
    "cancel_at_period_end": ["set_billable_status"],
    "set_billable_status": ["set_billable_status"],
    "create_schedule": ["end_schedule_with_cancel", "set_billable_status"],
    "end_schedule_with_cancel": ["set_billable_status"],
    "cancel_subscription": ["edit_contract", "edit_contract", "set_billable_status"],
    "edit_contract": ["edit_contract", "set_billable_status"],
    "edit_contract#2": ["set_billable_status"],
}


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class Customer:
    name: str
    batch: str
    stripe_id: str
    alias: str
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    book: Book
    boundary: datetime
    customers: dict[str, Customer]
    ledger: DynamoDBParityLedger
    sfn_batch: str
    execution_arn: str
    crash_writes: dict[str, list[str]] = field(default_factory=dict)
    early_auto_recharge: str = ""
    late_settlement: str = ""
    late_credit_check: str = ""
    # (host instant a move began, world clock offset after it): the progress store stamps steps on the host's
    # clock, so a step's recorded time is put on the world clock with the offset the world ran at when it was stamped
    offsets: list[tuple[float, float]] = field(default_factory=list)
    routed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the hard customer's events, by when

    def world(self, stamp: datetime | None) -> datetime:
        assert stamp is not None
        at = stamp.timestamp()
        offset = next(o for wall, o in reversed(self.offsets) if wall <= at)
        return datetime.fromtimestamp(at + offset, UTC)

    def request(self, c: Customer) -> CustomerStepRequest:
        return CustomerStepRequest(
            batch_id=c.batch, stripe_customer_id=c.stripe_id, run_key=run_key(c.batch), runner=f"test-{c.batch}"
        )

    def metronome_customer(self, c: Customer) -> str:
        (found,) = [
            m for m in self.book.metronome.v1.customers.list(ingest_alias=c.alias) if c.alias in m.ingest_aliases
        ]
        return str(found.id)

    def contract(self, c: Customer) -> Any:
        customer = self.metronome_customer(c)
        (contract,) = list(self.book.metronome.v2.contracts.list(customer_id=customer))
        return self.book.metronome.v2.contracts.retrieve(customer_id=customer, contract_id=contract.id).data

    def progress(self, c: Customer) -> Any:
        found = self.book.store.get(c.batch, c.stripe_id)
        assert found is not None
        return found


def _ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _send_usage(book: Book, c: Customer, at: datetime, minutes: int, *, stripe: bool) -> None:
    """What the router sends for one compute_minutes event: Stripe (before the cutover) and Metronome."""
    event_id = f"{c.alias}-{int(at.timestamp())}"
    if stripe:
        book.stripe.v1.billing.meter_events.create(
            params={
                "event_name": "compute_minutes",
                "payload": {"stripe_customer_id": c.stripe_id, "value": str(minutes)},
                "identifier": event_id,
                "timestamp": int(at.timestamp()),
            }
        )
    book.metronome.v1.usage.ingest(
        usage=[
            {
                "customer_id": c.alias,
                "event_type": "compute_minutes",
                "timestamp": _ts(at),
                "transaction_id": event_id,
                "properties": {"minutes": minutes},
            }
        ]
    )


def _send_stripe_only(book: Book, c: Customer, at: datetime, minutes: int) -> None:
    """An event the dual write lost on its way to Metronome: Stripe bills it, Metronome never sees it."""
    book.stripe.v1.billing.meter_events.create(
        params={
            "event_name": "compute_minutes",
            "payload": {"stripe_customer_id": c.stripe_id, "value": str(minutes)},
            "identifier": f"{c.alias}-stripe-only-{int(at.timestamp())}",
            "timestamp": int(at.timestamp()),
        }
    )


def _storm(book: Book) -> Callable[[], None]:
    """20% of vendor requests answered 429, 500 or 503."""
    controls = [book.stack.emulators[name].control for name in ("stripe", "metronome")]
    for control in controls:
        for status in (429, 500, 503):
            control.add_fault(FaultRule(path="^/v[12]/", status=status, rate=0.07))

    def calm() -> None:
        for control in controls:
            control.clear_faults()

    return calm


def _passing(c: Customer, start: datetime, end: datetime) -> PeriodParity:
    return PeriodParity(
        stripe_customer_id=c.stripe_id,
        batch_id=c.batch,
        period_start=start,
        period_end=end,
        closed=True,
        parity_run_id="parity-test",
        checked_at=end,
        stripe_total_cents=1200,
        metronome_total_cents=1200,
        within_tolerance=True,
    )


def _move(timeline: Timeline, to: datetime) -> None:
    """The world clock moved on. A step stamped from the host's instant the move began is put on the new offset:
    one stamped during the move ran after the world reached `to` (a step waiting for it could not start before)."""
    clock, began = timeline.book.stack.clock, time.time()
    timeline.book.stack.move_clock(to=to.timestamp())
    timeline.offsets.append((began, clock.now() - time.time()))


@pytest.fixture(scope="module")
def timeline(book: Book) -> Iterator[Timeline]:
    aws_target.pin_local_endpoint(book.stack.endpoint, book.stack.settings.region)
    try:
        yield _run_timeline(book)
    finally:
        aws_target.unpin()


def _run_timeline(book: Book) -> Timeline:
    boundary = book.config.cutover_at  # the 1st of next month: the customers' period boundary
    base = book.config.model_copy(update={"cutover_lead_hours": 24})
    configs: dict[str, ResolvedConfig] = {
        "main": base,
        "schedule": base.model_copy(update={"stripe_end": "subscription_schedule"}),
        "hard": base.model_copy(update={"strategy": "hard"}),
        "sfn": base.model_copy(update={"cutover_lead_hours": 48}),
    }
    tag = uuid.uuid4().hex[:6]
    batches = {name: f"cut-{name}-{tag}" for name in configs}
    for name, config in configs.items():
        if name != "sfn":
            book.storage.write_json(
                run_key(batches[name]), MigrationRun(batch_id=batches[name], config=config).model_dump(mode="json")
            )
    wanted = {
        # name: (batch, Stripe billing threshold); threshold customers hold 1000 + 300 of credit, under the
        # config's 2000 auto-recharge threshold, so enabling auto-recharge recharges at once (to 5000)
        "released": ("main", None),
        "held": ("main", None),
        "hard": ("hard", None),
        "schedule": ("schedule", None),
        "threshold": ("main", 50000),
        **{
            f"crash-{v}-{m}": ("schedule" if (v, m) in SCHEDULE_CRASHES else "main", None)
            for v, m in PERIOD_END_CRASHES + SCHEDULE_CRASHES
        },
        **{f"crash-{v}-{m}": ("main", 50000) for v, m in THRESHOLD_CRASHES},
        # Stripe bills an event of their last Stripe period that never reached Metronome: Stripe draws more of their
        # grants than Metronome's shadow invoice did, and the settling edit makes up the difference
        "drift": ("main", None),
        "settle-crash": ("main", None),
        "late": ("main", None),  # settled only after Metronome's first billable invoice is final
        "sfn-released": ("sfn", None),
        "sfn-held": ("sfn", None),
        "sfn-threshold": ("sfn", 50000),
        "sfn-failed": ("sfn", None),  # its Stripe subscription cancelled during the parallel run
    }
    customers: dict[str, Customer] = {}
    for name, (batch, threshold) in wanted.items():
        alias = f"{name.replace('#', '')}-{tag}"
        amounts = {"paid": 1000, "promotional": 300} if threshold else {}
        stripe_id = fresh_customer(book, alias, first_of_month=True, threshold=threshold, **amounts)
        customers[name] = Customer(name, batches[batch], stripe_id, alias)
    ledger = DynamoDBParityLedger(book.stack.outputs["ProgressTableName"], client=book.stack.client("dynamodb"))
    timeline = Timeline(book, boundary, customers, ledger, batches["sfn"], "")
    clock = book.stack.clock
    timeline.offsets.append((0.0, clock.now() - time.time()))
    book.stack.client("ssm").put_parameter(  # the router Lambda's config, as `billmig usage configure` stores it
        Name=book.stack.outputs["UsageRouterConfigParameter"],
        Value=UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text()).model_dump_json(),
        Type="String",
        Overwrite=True,
    )

    # -- the parallel run: in-process for most, the state machine for the `sfn-*` customers
    for c in customers.values():
        if c.batch != batches["sfn"]:
            book.run_steps(c.batch, c.stripe_id)
    sfn_batch = runner.Batch(batches["sfn"], [c.stripe_id for c in customers.values() if c.batch == batches["sfn"]])
    plan = runner.plan(sfn_batch, configs["sfn"], runner.Vendors(book.source(), book.target()))
    assert not plan.blocked, plan.blocked
    timeline.execution_arn = runner.start(sfn_batch, configs["sfn"], plan).execution_arn
    runner.wait_for_parallel_run(sfn_batch.batch_id, len(sfn_batch.customer_ids), timeout=120)
    # the customer leaves during its parallel run: its Stripe subscription is cancelled before the decision
    (gone,) = book.stripe.v1.subscriptions.list(params={"customer": customers["sfn-failed"].stripe_id}).data
    book.stripe.v1.subscriptions.cancel(gone.id)
    customers["sfn-failed"].results["subscription"] = gone.id
    # the parity ledger as the parity checks leave it: passed, except for the held-back ones
    last_closed = (book.parallel_run_start - timedelta(days=1)).replace(day=1)
    for c in customers.values():
        if c.name == "held":
            failing = _passing(c, last_closed, book.parallel_run_start).model_copy(
                update={
                    "within_tolerance": False,
                    "metronome_total_cents": 900,
                    "differences": [
                        Difference(
                            cause=Cause.PRICING_GROUP_MISMATCH,
                            cents=300,
                            evidence="storage eu-west rated as us-east",
                            suggested_fix="map storage_gb_eu_west onto region eu-west",
                        )
                    ],
                }
            )
            ledger.record(failing)
        elif c.name != "sfn-held":
            ledger.record(_passing(c, last_closed, book.parallel_run_start))

    # -- the state machine's decision, two days before the boundary, in a 20% fault storm
    _move(timeline, boundary - timedelta(hours=48))
    for name in ("released", "sfn-released"):  # the last Stripe period's usage, to both
        _send_usage(book, customers[name], boundary - timedelta(hours=50), 400, stripe=True)
    for name in ("drift", "settle-crash", "late"):  # and one that only Stripe billed
        _send_stripe_only(book, customers[name], boundary - timedelta(hours=50), 300)
    calm = _storm(book)
    try:
        sfn_released, sfn_held = customers["sfn-released"], customers["sfn-held"]
        until(
            lambda: (
                _succeeded(timeline, sfn_released, Step.METRONOME_CUT_OVER)
                and timeline.progress(sfn_held).phase == "held_back"
                and _succeeded(timeline, customers["sfn-threshold"], Step.METRONOME_CUTOVER_GATE)
            ),
            timeout=120,
            what="the state machine's customers decided",
        )
    finally:
        calm()

    # -- the in-process decision, a day before the boundary
    _move(timeline, boundary - timedelta(hours=24))
    for c in customers.values():
        if c.batch == batches["sfn"]:
            continue
        c.results["decision"] = decide_cutover(timeline.request(c), book.storage, book.store, ledger, clock)
    held = customers["held"]
    held.results["held_phase"] = timeline.progress(held).model_copy()
    ledger.approve(
        Approval(
            stripe_customer_id=held.stripe_id,
            approved_by="ops@example.com",
            approved_at=datetime.fromtimestamp(clock.now(), UTC),
            reason="eu-west difference explained: a rate card fix lands at the boundary",
        )
    )
    held.results["decision"] = decide_cutover(timeline.request(held), book.storage, book.store, ledger, clock)
    for c in customers.values():
        decision: CutoverDecision | None = c.results.get("decision")
        if decision is None or decision.path != "period_end" or c.name.startswith("crash-"):
            continue
        _period_end_steps(timeline, c)
    for vendor, method in PERIOD_END_CRASHES + SCHEDULE_CRASHES:
        c = customers[f"crash-{vendor}-{method}"]
        timeline.crash_writes[c.name] = _crash_then_rerun(timeline, c, vendor, method, _period_end_steps)
    # the hard customer's usage of its last Stripe period, through the usage queue and the router Lambda, once its
    # phase is switched (the router caches a route for a minute of the host's clock; the world's moves are faster)
    hard = customers["hard"]
    timeline.routed["before"] = usage(hard.alias, [boundary - timedelta(hours=h) for h in (26, 25)], f"{hard.alias}-b")
    route(book.stack, timeline.routed["before"])
    try:
        enable_auto_recharge(timeline.request(customers["threshold"]), book.storage, book.target(), book.store, clock)
    except CutoverTooEarly as exc:
        timeline.early_auto_recharge = str(exc)
    customers["threshold"].results["recharge_step_before"] = timeline.progress(customers["threshold"]).steps.get(
        Step.METRONOME_AUTO_RECHARGE
    )
    customers["threshold"].results["contract_before"] = timeline.contract(customers["threshold"])

    # -- the boundary: the state machine's threshold customer in a storm, then the in-process ones
    _move(timeline, boundary + timedelta(minutes=30))
    calm = _storm(book)
    try:
        until(
            lambda: _succeeded(timeline, customers["sfn-threshold"], Step.METRONOME_CUT_OVER),
            timeout=120,
            what="the state machine's threshold customer cut over",
        )
    finally:
        calm()
    _threshold_steps(timeline, customers["threshold"])
    for vendor, method in THRESHOLD_CRASHES:
        c = customers[f"crash-{vendor}-{method}"]
        timeline.crash_writes[c.name] = _crash_then_rerun(timeline, c, vendor, method, _threshold_steps)
    for name in ("released", "sfn-released"):  # the first Metronome period's: Metronome only
        _send_usage(book, customers[name], boundary + timedelta(minutes=10), 250, stripe=False)
    # the hard customer's first Metronome period, and a late event of its last Stripe period, through the router
    timeline.routed["after"] = usage(hard.alias, [boundary + timedelta(minutes=m) for m in (5, 10)], f"{hard.alias}-a")
    timeline.routed["late"] = usage(hard.alias, [boundary - timedelta(hours=1)], f"{hard.alias}-l")
    route(book.stack, timeline.routed["after"] + timeline.routed["late"])

    # -- both last periods final: the moved balances settled to what Stripe left (the state machine's in a storm)
    _move(timeline, boundary + LAST_PERIODS_SETTLED + timedelta(minutes=5))
    calm = _storm(book)
    try:
        until(
            lambda: all(
                _succeeded(timeline, customers[name], Step.METRONOME_SETTLE_BALANCES)
                for name in ("sfn-released", "sfn-threshold")
            ),
            timeout=120,
            what="the state machine's customers settled",
        )
    finally:
        calm()
    for c in customers.values():
        if c.batch == batches["sfn"] or c.name in ("late", "settle-crash"):
            continue
        if _succeeded(timeline, c, Step.METRONOME_CUT_OVER):
            _settle(timeline, c)
    timeline.crash_writes["settle-crash"] = _crash_then_rerun(
        timeline, customers["settle-crash"], "metronome", "edit_contract", _settle
    )

    # -- after the first Metronome cycle: the credit checks (the state machine's in a storm)
    _move(timeline, next_month(boundary) + timedelta(hours=26))
    try:
        _settle(timeline, customers["late"])
    except BalanceSettlementTooLate as exc:
        timeline.late_settlement = str(exc)
    calm = _storm(book)
    try:
        until(
            lambda: (
                book.stack.client("stepfunctions").describe_execution(executionArn=timeline.execution_arn)["status"]
                != "RUNNING"
            ),
            timeout=120,
            what="the state machine's execution to end",
        )
    finally:
        calm()
    for c in customers.values():
        if c.batch != batches["sfn"] and c.name != "late" and _succeeded(timeline, c, Step.METRONOME_CUT_OVER):
            c.results["credit_check"] = check_credits(
                timeline.request(c), book.storage, book.source(), book.target(), book.store, clock
            )
    try:  # never settled: the credit check names the difference
        check_credits(
            timeline.request(customers["late"]), book.storage, book.source(), book.target(), book.store, clock
        )
    except CreditCheckFailed as exc:
        timeline.late_credit_check = str(exc)
    return timeline


def _succeeded(timeline: Timeline, c: Customer, step: Step) -> bool:
    record = timeline.progress(c).steps.get(step)
    return record is not None and record.status is StepStatus.SUCCEEDED


def _period_end_steps(timeline: Timeline, c: Customer, stripe: Any = None, target: Any = None) -> None:
    book = timeline.book
    request = timeline.request(c)
    end_stripe_at_period_end(request, book.storage, stripe or book.source(), book.store)
    set_billable_at_boundary(request, book.storage, target or book.target(), book.store)
    switch_phase(request, book.storage, book.store)


def _threshold_steps(timeline: Timeline, c: Customer, stripe: Any = None, target: Any = None) -> None:
    book, clock = timeline.book, timeline.book.stack.clock
    request = timeline.request(c)
    stripe, target = stripe or book.source(), target or book.target()
    end_stripe_now(request, book.storage, stripe, book.store, clock)
    move_balance(request, book.storage, stripe, target, book.store)
    enable_auto_recharge(request, book.storage, target, book.store, clock)
    set_billable_at_boundary(request, book.storage, target, book.store)
    switch_phase(request, book.storage, book.store)


def _settle(timeline: Timeline, c: Customer, stripe: Any = None, target: Any = None) -> None:
    book = timeline.book
    c.results["settled"] = settle_balances(
        timeline.request(c),
        book.storage,
        stripe or book.source(),
        target or book.target(),
        book.store,
        book.stack.clock,
    )


def _crash_then_rerun(
    timeline: Timeline, c: Customer, vendor: str, point: str, steps: Callable[..., None]
) -> list[str]:
    """The steps with a crash right after `point` reached the vendor, then the rerun: the writes the rerun made."""
    method, _, occurrence = point.partition("#")
    book = timeline.book
    writes = STRIPE_WRITES if vendor == "stripe" else None
    crashing = (
        CrashAfter(book.source(), method, int(occurrence or 1), writes=STRIPE_WRITES)
        if writes
        else CrashAfter(book.target(), method, int(occurrence or 1))
    )
    with pytest.raises(SimulatedCrash):
        steps(timeline, c, **({"stripe": crashing} if writes else {"target": crashing}))
    stripe_rerun, metronome_rerun = CrashAfter(book.source(), writes=STRIPE_WRITES), CrashAfter(book.target())
    steps(timeline, c, stripe=stripe_rerun, target=metronome_rerun)
    return stripe_rerun.writes + metronome_rerun.writes


# -- what the vendors hold ----------------------------------------------------------------------------------------


def _stripe_invoices(book: Book, c: Customer) -> list[Any]:
    return list(book.stripe.v1.invoices.list(params={"customer": c.stripe_id, "limit": 100}).auto_paging_iter())


def _assert_billed_once(timeline: Timeline, c: Customer) -> None:
    """The last Stripe invoice covers the last Stripe period, the first Metronome one (delivered to Stripe as a
    Stripe invoice) the next; nothing before the boundary from Metronome, nothing after it from the subscription."""
    book, boundary = timeline.book, timeline.boundary
    invoices = _stripe_invoices(book, c)
    from_subscription = [i for i in invoices if i.parent is not None and i.parent.subscription_details is not None]
    assert from_subscription, c.name
    assert max(i.period_end for i in from_subscription) == int(boundary.timestamp())
    assert all(i.period_end <= int(boundary.timestamp()) for i in from_subscription), c.name
    delivered = [i for i in invoices if i.metadata and i.metadata.to_dict().get("metronome_id")]
    metronome_customer = timeline.metronome_customer(c)
    periods = []
    for invoice in delivered:
        source = book.metronome.v1.customers.invoices.retrieve(
            customer_id=metronome_customer, invoice_id=invoice.metadata["metronome_id"]
        ).data
        if source.type == "USAGE":
            periods.append((source.start_timestamp, source.end_timestamp))
    starts = sorted(_utc(s) for s, _ in periods)
    assert starts and starts[0] == boundary, (c.name, periods)


def _phase_after_the_batch(name: str) -> str:
    """The state machine's batch ends with CleanUpBatch, which moves its cut-over customers to `cleaned_up`; the
    in-process customers' batches are never cleaned up here, so they stay `cut_over`."""
    return "cleaned_up" if name.startswith("sfn-") else "cut_over"


def test_a_released_customer_is_cut_over_at_its_boundary_and_every_period_billed_once(timeline: Timeline) -> None:
    for name in ("released", "sfn-released"):
        c = timeline.customers[name]
        progress = timeline.progress(c)
        assert (progress.phase, progress.cutover_at) == (_phase_after_the_batch(name), timeline.boundary)
        assert "parity passed" in (progress.steps[Step.METRONOME_CUTOVER_GATE].detail or "")
        subscription = timeline.book.stripe.v1.subscriptions.retrieve(
            progress.steps[Step.METRONOME_STRIPE_PERIOD_END].vendor_ids["stripe_subscription_id"]
        )
        assert subscription.status == "canceled"
        assert subscription.ended_at == int(timeline.boundary.timestamp())
        status = timeline.book.metronome.v1.customers.retrieve(
            customer_id=timeline.metronome_customer(c)
        ).data.current_billable_status
        assert status is not None and status.value == "billable"
        _assert_billed_once(timeline, c)
        assert progress.steps[Step.METRONOME_CREDIT_CHECK].outcome == "matched", name
        route = CustomerRoute(c.alias, c.stripe_id, progress.phase, progress.dual_write_from, progress.cutover_at)
        assert route.destinations(timeline.boundary) == {Destination.METRONOME}
        assert route.destinations(timeline.boundary - timedelta(seconds=1)) == {
            Destination.STRIPE,
            Destination.METRONOME,
        }


def test_a_subscription_schedule_ends_the_stripe_subscription_at_the_boundary(timeline: Timeline) -> None:
    c = timeline.customers["schedule"]
    subscription_id = timeline.progress(c).steps[Step.METRONOME_STRIPE_PERIOD_END].vendor_ids["stripe_subscription_id"]
    schedules = list(
        timeline.book.stripe.v1.subscription_schedules.list(params={"customer": c.stripe_id}).auto_paging_iter()
    )
    assert [(s.subscription, s.end_behavior) for s in schedules] == [(subscription_id, "cancel")]
    assert timeline.book.stripe.v1.subscriptions.retrieve(subscription_id).status == "canceled"
    assert timeline.progress(c).phase == "cut_over"


def test_a_hard_cutover_has_no_gate_and_metronome_invoices_from_the_next_period(timeline: Timeline) -> None:
    c = timeline.customers["hard"]
    progress = timeline.progress(c)
    assert progress.steps[Step.METRONOME_CUTOVER_GATE].detail == "hard cutover: no parallel run to check"
    schedule = timeline.contract(c).usage_statement_schedule.to_dict()
    assert _utc(schedule["invoice_generation_starting_at"]) == timeline.boundary
    invoices = timeline.book.metronome.v1.customers.invoices.list(customer_id=timeline.metronome_customer(c))
    assert all(_utc(i.start_timestamp) >= timeline.boundary for i in invoices if i.type == "USAGE")
    assert (progress.phase, progress.cutover_at) == ("cut_over", timeline.boundary)
    # Stripe's side: its last cycle invoice covers the last Stripe period, Metronome's first (pushed to Stripe) the next
    _assert_billed_once(timeline, c)
    assert timeline.book.stripe.v1.subscriptions.retrieve(
        progress.steps[Step.METRONOME_STRIPE_PERIOD_END].vendor_ids["stripe_subscription_id"]
    ).ended_at == int(timeline.boundary.timestamp())


def test_after_a_hard_cutover_the_router_sends_stripe_only_what_is_before_the_boundary(timeline: Timeline) -> None:
    """What the router Lambda did with the hard customer's events: those timed before the boundary (one sent late,
    after it) reached Stripe and Metronome (which does not bill before the boundary), those from it Metronome only."""
    book, boundary, c = timeline.book, timeline.boundary, timeline.customers["hard"]
    stripe_side = [*timeline.routed["before"], *timeline.routed["late"]]
    after = timeline.routed["after"]
    accepted = stripe_accepted(book)
    assert [accepted[i] for i in ids(stripe_side)] == [1] * len(stripe_side)
    assert [accepted[i] for i in ids(after)] == [0] * len(after)
    everything = ids(stripe_side + after)
    assert metronome_receipts(book.metronome, everything) == Counter({(t, False): 1 for t in everything})
    rule = next(
        r
        for r in UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text()).rules
        if r.event_name == ("compute_minutes")
    )
    totals = VendorUsageTotals(book.stripe, book.metronome)
    minutes = {k: Decimal(sum(e["properties"]["minutes"] for e in v)) for k, v in timeline.routed.items()}
    last_period = (boundary - timedelta(days=1)).replace(day=1)
    assert totals.stripe_total(c.stripe_id, rule, last_period, boundary) == minutes["before"] + minutes["late"]
    assert totals.stripe_total(c.stripe_id, rule, boundary, next_month(boundary)) == 0
    assert totals.metronome_total(c.alias, rule, boundary, next_month(boundary)) == minutes["after"]
    route = CustomerRoute(c.alias, c.stripe_id, "cut_over", None, timeline.progress(c).cutover_at)
    assert route.destinations(boundary - timedelta(seconds=1)) == {Destination.STRIPE, Destination.METRONOME}
    assert route.destinations(boundary) == {Destination.METRONOME}


def test_a_customer_held_back_by_parity_keeps_dual_writing_until_an_approval_releases_it(timeline: Timeline) -> None:
    held = timeline.customers["held"].results["held_phase"]
    assert (held.phase, held.cutover_at) == ("held_back", None)
    assert held.phase_reason.startswith("parity outside tolerance for ")
    assert "pricing_group_mismatch" in held.phase_reason
    c = timeline.customers["held"]
    assert c.results["decision"].verdict == "released"
    assert timeline.progress(c).phase == "cut_over"
    assert "approved by ops@example.com" in (timeline.progress(c).steps[Step.METRONOME_CUTOVER_GATE].detail or "")
    # the state machine's: never checked, held back with the reason, and still sent to both
    s = timeline.progress(timeline.customers["sfn-held"])
    assert (s.phase, s.cutover_at, s.phase_reason) == (
        "held_back",
        None,
        "no closed billing period has been checked for parity yet",
    )
    route = CustomerRoute(s.ingest_alias or "", s.subject, s.phase, s.dual_write_from, s.cutover_at)
    assert route.destinations(timeline.boundary + timedelta(days=3)) == {Destination.STRIPE, Destination.METRONOME}
    stripe_sub = timeline.book.stripe.v1.subscriptions.list(params={"customer": s.subject}).data[0]
    assert stripe_sub.status == "active" and not stripe_sub.cancel_at_period_end
    status = runner.status(timeline.sfn_batch)
    assert status.held_back == {s.subject: "no closed billing period has been checked for parity yet"}
    # the execution's CleanUpBatch (after the Map) moved its two cut-over customers on; the held-back one stays
    assert status.phases["cleaned_up"] == 2 and status.phases["held_back"] == 1 and "cut_over" not in status.phases
    assert s.subject not in status.failures


THRESHOLD_STEPS = (
    Step.METRONOME_STRIPE_END_NOW,
    Step.METRONOME_MOVE_BALANCE,
    Step.METRONOME_AUTO_RECHARGE,
    Step.METRONOME_BILLABLE,
)


def test_a_threshold_customers_four_writes_are_separate_steps_with_auto_recharge_from_the_boundary(
    timeline: Timeline,
) -> None:
    """decisions.md (c): the Stripe end, the balance move, auto-recharge and billable, each its own recorded step, in
    that order; auto-recharge ran (on the world clock) no earlier than the boundary the billable switch is due at."""
    # refused a day early, and nothing recorded for it
    assert timeline.customers["threshold"].results["recharge_step_before"] is None
    for name in ("threshold", "sfn-threshold"):
        c = timeline.customers[name]
        steps = timeline.progress(c).steps
        records = [steps[s] for s in THRESHOLD_STEPS]
        assert [r.status for r in records] == [StepStatus.SUCCEEDED] * 4, name
        outcomes = [r.outcome for r in records]
        if name == "threshold":  # in-process, each step once
            assert outcomes == ["ended", "moved", "enabled", "billable"]
        else:  # a Lambda retried in the storm finds its earlier write
            assert outcomes[0] in {"ended", "found"} and outcomes[1] in {"moved", "found"}, outcomes
            assert outcomes[2] in {"enabled", "found"} and outcomes[3] == "billable", outcomes
        for earlier, later in pairwise(records):
            assert earlier.finished_at is not None and later.started_at is not None
            assert earlier.finished_at <= later.started_at, name
        assert records[3].detail == f"effective {rfc3339(timeline.boundary)}"
        recharge = steps[Step.METRONOME_AUTO_RECHARGE]
        assert timeline.world(recharge.started_at) >= timeline.boundary, name
        # Metronome's own clock says the same: the recharge it made at once is dated from the boundary on
        (commit,) = [x for x in timeline.contract(c).commits if x.name == "Auto-recharge"]
        assert _utc(commit.access_schedule.schedule_items[0].starting_at) >= timeline.boundary, name


def test_a_threshold_customer_recharges_only_after_it_is_billable(timeline: Timeline) -> None:
    assert "never before billable is due" in timeline.early_auto_recharge
    for name in ("threshold", "sfn-threshold"):
        c = timeline.customers[name]
        progress = timeline.progress(c)
        assert progress.phase == _phase_after_the_batch(name), name
        # ended at once with a final invoice, finalized
        subscription = timeline.book.stripe.v1.subscriptions.retrieve(
            progress.steps[Step.METRONOME_STRIPE_END_NOW].vendor_ids["stripe_subscription_id"]
        )
        assert subscription.status == "canceled"
        final = timeline.book.stripe.v1.invoices.retrieve(
            progress.steps[Step.METRONOME_STRIPE_END_NOW].vendor_ids["stripe_final_invoice_id"]
        )
        assert final.status != "draft"
        contract = timeline.contract(c)
        threshold = contract.prepaid_balance_threshold_configuration
        assert threshold is not None and threshold.is_enabled is True
        assert threshold.payment_gate_config.payment_gate_type == "STRIPE"
        moved = {x.name: x for x in contract.commits} | {x.name: x for x in contract.credits or []}
        grants = list(timeline.book.stripe.v1.billing.credit_grants.list(params={"customer": c.stripe_id}).data)
        assert {g.id for g in grants} <= set(moved)
        for commit in contract.commits:
            if commit.name in {g.id for g in grants}:
                start = commit.access_schedule.schedule_items[0].starting_at
                assert _utc(start) >= timeline.boundary, (name, commit.name)
        recharges = [x for x in contract.commits if x.name == "Auto-recharge"]
        assert len(recharges) == 1, name  # 1300 left, under the 2000 threshold: recharged once, to 5000
        scheduled = timeline.book.metronome.v1.customers.invoices.list(
            customer_id=timeline.metronome_customer(c), type="SCHEDULED"
        )
        issued = [_utc(i.issued_at) for i in scheduled]
        assert issued and min(issued) >= timeline.boundary
    before = timeline.customers["threshold"].results["contract_before"]
    assert before.prepaid_balance_threshold_configuration is None


@pytest.mark.parametrize(("vendor", "point"), PERIOD_END_CRASHES + SCHEDULE_CRASHES + THRESHOLD_CRASHES, ids=str)
def test_a_crash_after_each_cutover_write_then_a_rerun_duplicates_nothing(
    timeline: Timeline, vendor: str, point: str
) -> None:
    c = timeline.customers[f"crash-{vendor}-{point}"]
    # what the rerun still had to write: never the write that had reached the vendor (the billable status is keyed:
    # sent again, Metronome replays its first answer)
    assert timeline.crash_writes[c.name] == RERUN_WRITES[point]
    progress = timeline.progress(c)
    assert progress.phase == "cut_over"
    assert progress.steps[Step.METRONOME_CREDIT_CHECK].outcome == "matched"
    stripe_sub = timeline.book.stripe.v1.subscriptions.list(params={"customer": c.stripe_id, "status": "all"}).data
    assert len(stripe_sub) == 1 and stripe_sub[0].status == "canceled"
    schedules = list(timeline.book.stripe.v1.subscription_schedules.list(params={"customer": c.stripe_id}).data)
    assert len(schedules) == (1 if (vendor, point) in SCHEDULE_CRASHES else 0)
    contract = timeline.contract(c)
    names = [x.name for x in contract.commits] + [x.name for x in contract.credits or []]
    grants = [g.id for g in timeline.book.stripe.v1.billing.credit_grants.list(params={"customer": c.stripe_id}).data]
    assert sorted(n for n in names if n in grants) == sorted(grants)
    assert names.count("Auto-recharge") <= 1


def test_every_cut_over_customer_passes_the_credit_check_on_every_moved_balance(timeline: Timeline) -> None:
    """After the first Metronome cycle: every customer cut over (the released, approved, hard, schedule, threshold,
    crashed and settled ones, in-process and the state machine's) matched Stripe's remainder on each of its grants."""
    cut = {n: c for n, c in timeline.customers.items() if _succeeded(timeline, c, Step.METRONOME_CUT_OVER)}
    expected = {"released", "held", "hard", "schedule", "threshold", "drift", "settle-crash", "late"}
    expected |= {"sfn-released", "sfn-threshold"} | {n for n in timeline.customers if n.startswith("crash-")}
    assert set(cut) == expected
    for name, c in cut.items():
        check = timeline.progress(c).steps[Step.METRONOME_CREDIT_CHECK]
        grants = timeline.book.source().credit_grants(c.stripe_id)
        assert grants, name
        if name == "late":  # never settled: the check failed the customer with the numbers
            assert check.status is StepStatus.FAILED and check.last_error is not None, name
            assert check.last_error.type == "CreditCheckFailed" and "expected " in check.last_error.message
            continue
        assert (check.status, check.outcome) == (StepStatus.SUCCEEDED, "matched"), (name, check.detail)
        for grant in grants:
            assert f"{grant.id}: Stripe left " in (check.detail or ""), (name, grant.id, check.detail)


def test_a_customer_that_fails_at_its_cutover_is_reported_and_the_batch_ends_without_it(timeline: Timeline) -> None:
    """The state machine's customer whose Stripe subscription was cancelled during the parallel run: its cutover
    fails permanently (recorded, with the reason), the others of the batch are cut over and cleaned up, and the
    execution still ends."""
    book, c = timeline.book, timeline.customers["sfn-failed"]
    sfn = book.stack.client("stepfunctions")
    ended = sfn.describe_execution(executionArn=timeline.execution_arn)
    assert ended["status"] == "SUCCEEDED"
    # SUCCEEDED only says every customer settled: the output says how, never plain success with a customer failed
    outcome = json.loads(ended["output"])["cleanup"]["batch"]
    assert outcome["status"] == "completed with errors"
    assert (outcome["customers"], outcome["cut_over"]) == (4, 2)
    assert set(outcome["failed"]) == {c.stripe_id} and outcome["not_cut_over"] == {}
    assert outcome["failed"][c.stripe_id].startswith(f"{Step.METRONOME_STRIPE_PERIOD_END}: CutoverMismatch: ")
    assert len(outcome["held_back"]) == 1
    assert outcome["summary"] == (
        "completed with errors: 2 of 4 cut over, 1 held back, 1 failed, 0 not cut over for another reason"
    )
    progress = timeline.progress(c)
    failed = progress.steps[Step.METRONOME_STRIPE_PERIOD_END]
    assert failed.status is StepStatus.FAILED and failed.last_error is not None
    assert failed.last_error.transient is False
    assert failed.last_error.type == "CutoverMismatch"
    assert f"{c.results['subscription']} is already canceled (ended " in failed.last_error.message
    assert "before the cutover at " in failed.last_error.message
    assert "billmig metronome rollback" in failed.last_error.message
    for later in (Step.METRONOME_BILLABLE, Step.METRONOME_CUT_OVER, Step.METRONOME_CREDIT_CHECK):
        assert later not in progress.steps, later
    assert progress.phase == "parallel_run" and progress.cutover_at is None  # never sent to Metronome alone
    status = runner.status(timeline.sfn_batch)
    assert set(status.failures) == {c.stripe_id}
    assert status.failures[c.stripe_id].startswith(f"{Step.METRONOME_STRIPE_PERIOD_END}: ")
    assert status.phases == Counter({"cleaned_up": 2, "held_back": 1, "parallel_run": 1})
    assert status.execution is not None and status.execution.endswith("SUCCEEDED")
    assert status.outcome == outcome["summary"]  # what `billmig metronome status` prints as the outcome
    status_ = book.metronome.v1.customers.retrieve(customer_id=timeline.metronome_customer(c)).data
    assert status_.current_billable_status is not None and status_.current_billable_status.value == "unbillable"


def test_a_balance_stripe_drew_more_of_is_settled_to_what_stripe_left_before_metronome_bills(
    timeline: Timeline,
) -> None:
    c = timeline.customers["drift"]
    settled = timeline.progress(c).steps[Step.METRONOME_SETTLE_BALANCES]
    assert settled.outcome == "settled", settled.detail
    book = timeline.book
    grants = {g.id: g for g in book.source().credit_grants(c.stripe_id)}
    contract = book.target().contract(timeline.metronome_customer(c), timeline.contract(c).id, with_balances=True)
    invoices = book.target().invoices(timeline.metronome_customer(c))
    for balance in contract.balances:
        grant = grants[balance.name or ""]
        before = sum(i.drawn.get(balance.id, 0) for i in invoices if i.start and i.start < timeline.boundary)
        assert balance.amount == grant.remaining + before, balance.name  # its balance at the boundary: Stripe's
        assert f"{grant.id} " in (settled.detail or "") or balance.amount == grant.amount
    assert timeline.progress(c).steps[Step.METRONOME_CREDIT_CHECK].outcome == "matched"
    # the customers whose periods both sides billed alike: nothing to settle
    assert timeline.progress(timeline.customers["released"]).steps[Step.METRONOME_SETTLE_BALANCES].outcome == "as moved"
    assert timeline.progress(timeline.customers["sfn-released"]).steps[Step.METRONOME_SETTLE_BALANCES].outcome == (
        "as moved"
    )


def test_a_crash_after_the_settling_edit_then_a_rerun_edits_nothing_twice(timeline: Timeline) -> None:
    c = timeline.customers["settle-crash"]
    assert timeline.crash_writes[c.name] == []
    assert timeline.progress(c).steps[Step.METRONOME_SETTLE_BALANCES].outcome == "settled"
    assert timeline.progress(c).steps[Step.METRONOME_CREDIT_CHECK].outcome == "matched"


def test_a_settlement_due_after_metronomes_first_billable_invoice_is_final_is_refused(timeline: Timeline) -> None:
    assert "from the boundary is FINALIZED" in timeline.late_settlement
    assert "settle them by hand: credgr_" in timeline.late_settlement and "(Stripe left " in timeline.late_settlement
    # left as moved, it is what the credit check after the first Metronome cycle catches
    assert "Stripe left " in timeline.late_credit_check and "expected " in timeline.late_credit_check
    assert Step.METRONOME_SETTLE_BALANCES not in timeline.progress(timeline.customers["late"]).steps or (
        timeline.progress(timeline.customers["late"]).steps[Step.METRONOME_SETTLE_BALANCES].status
        is not StepStatus.SUCCEEDED
    )
