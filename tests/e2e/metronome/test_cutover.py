"""The cutover on the local stack, on one timeline moved by the world clock: the parallel run, the decision a day
(the state machine's batch: two days) before the customers' period boundary, the boundary, and the first Metronome
cycle after it. Customers released by parity, held back (and released by an approval), on a hard cutover, on a
subscription schedule and on threshold billing; a crash after every vendor write of the cutover steps, then a rerun;
a 20% fault storm over the state machine's cutover. Everything is checked through the vendors' SDKs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.metronome.balance_settlement import settle_balances
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
from billmig.usage.routing import CustomerRoute, Destination
from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner
from billmig_local.emulators.control_plane import FaultRule
from metronome_book import Book, CrashAfter, SimulatedCrash, book, fresh_customer, next_month  # noqa: F401
from suite import until

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


def _move(book: Book, to: datetime) -> None:
    book.stack.move_clock(to=to.timestamp())


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

    # -- the parallel run: in-process for most, the state machine for the `sfn-*` customers
    for c in customers.values():
        if c.batch != batches["sfn"]:
            book.run_steps(c.batch, c.stripe_id)
    sfn_batch = runner.Batch(batches["sfn"], [c.stripe_id for c in customers.values() if c.batch == batches["sfn"]])
    plan = runner.plan(sfn_batch, configs["sfn"], runner.Vendors(book.source(), book.target()))
    assert not plan.blocked, plan.blocked
    timeline.execution_arn = runner.start(sfn_batch, configs["sfn"], plan).execution_arn
    runner.wait_for_parallel_run(sfn_batch.batch_id, len(sfn_batch.customer_ids), timeout=120)
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
    _move(book, boundary - timedelta(hours=48))
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
    _move(book, boundary - timedelta(hours=24))
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
    try:
        enable_auto_recharge(timeline.request(customers["threshold"]), book.storage, book.target(), book.store, clock)
    except CutoverTooEarly as exc:
        timeline.early_auto_recharge = str(exc)
    customers["threshold"].results["contract_before"] = timeline.contract(customers["threshold"])

    # -- the boundary: the state machine's threshold customer in a storm, then the in-process ones
    _move(book, boundary + timedelta(minutes=30))
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

    # -- both last periods final: the moved balances settled to what Stripe left (the state machine's in a storm)
    _move(book, boundary + LAST_PERIODS_SETTLED + timedelta(minutes=5))
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
    _move(book, next_month(boundary) + timedelta(hours=26))
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
    assert status.failures == {}


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
