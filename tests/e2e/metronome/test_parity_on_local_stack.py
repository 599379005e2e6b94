"""Parity checks on the local stack: a batch seeded with one deliberate fault per customer (a property value with no
rate, one in another case, a dropped event, two grants at equal priority, a statement schedule not on Stripe's
anchor, no contract), clean customers (one billed at a threshold), and one whose Metronome credits drifted above
Stripe's, one closed billing period of usage sent to both vendors through their SDKs; `billmig parity run` finds
each fault's class, the gate holds back exactly the faulty ones, an approval
releases one, a fault storm changes nothing, and the daily schedule fires through the local scheduler."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.resolution import ResolvedPrice
from billmig.metronome.storage import MigrationRun, run_key
from billmig.parity.ledger import cutover_verdict
from billmig.parity.verdicts import Cause, PeriodParity
from billmig_cli.main import app
from billmig_local.emulators.control_plane import FaultRule
from billmig_local.stack import LocalStack
from metronome_book import Book, book, fresh_customer, month_start  # noqa: F401 - the fixture
from suite import REPO, until
from typer.testing import CliRunner

ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"
CLEAN = ("clean_a", "clean_b", "threshold")
FAULTS = {
    "unrated": Cause.PRICING_GROUP_MISMATCH,
    "other_case": Cause.PRICING_GROUP_MISMATCH,
    "dropped": Cause.MISSING_USAGE,
    "equal_priority": Cause.CREDIT_ORDER,
    "misaligned": Cause.PERIOD_MISALIGNMENT,
    "no_contract": Cause.NO_CONTRACT,
}
EXPLAINED = ("drift",)  # a difference the cutover itself settles: reported, and the period passes
DRIFT_CENTS = 5_000


@dataclass
class Seeded:
    name: str
    internal_id: str
    stripe_id: str


@dataclass
class ParityWorld:
    batch: str
    customers: dict[str, Seeded]
    ledger: DynamoDBParityLedger
    period_end: datetime


class FirstOfMonthTarget:
    """The real target, except that contracts get calendar-month statements (not Stripe's anchor): the fault."""

    def __init__(self, inner: MetronomeTarget) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_contract(self, terms: dict[str, Any]) -> str:
        schedule = {"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"}
        schedule["invoice_generation_starting_at"] = terms["usage_statement_schedule"]["invoice_generation_starting_at"]
        return self._inner.create_contract({**terms, "usage_statement_schedule": schedule})


def _drifted(book: Book, who: Seeded) -> None:
    """Each Metronome copy of the customer's grants DRIFT_CENTS above what Stripe has left, as when Stripe drew the
    grants after the contract moved them (the period in flight at the parallel-run start)."""
    target = book.target()
    found = target.customer_by_alias(who.internal_id)
    assert found is not None
    contract = target.contracts(found.id)[0]
    updates: dict[str, list[dict[str, Any]]] = {"update_commits": [], "update_credits": []}
    for balance in contract.balances:
        item = {"id": balance.access_item_ids[0], "amount": balance.amount + DRIFT_CENTS}
        kind, key = ("update_credits", "credit_id") if balance.kind == "CREDIT" else ("update_commits", "commit_id")
        updates[kind].append({key: balance.id, "access_schedule": {"update_schedule_items": [item]}})
    target.edit_contract(
        found.id, contract.id, updates, uniqueness_key=f"drift:{who.internal_id}", idempotency_key=f"drift:{who.name}"
    )


def _stamp(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _send(
    book: Book, who: Seeded, at: datetime, events: list[tuple[str, int, str | None]], first: int = 0, **fault: Any
) -> None:
    """Each (kind, value, region) to Stripe's meter and to Metronome, as the router would send it (ids shared)."""
    usage = []
    for n, (kind, value, region) in enumerate(events, start=first):
        when = at + timedelta(minutes=n)
        event_id = f"{who.internal_id}-{n}"
        name = f"{kind}.{region}" if region else kind
        book.stripe.v1.billing.meter_events.create(
            params={
                "event_name": name,
                "payload": {"stripe_customer_id": who.stripe_id, "value": str(value)},
                "identifier": event_id,
                "timestamp": int(when.timestamp()),
            }
        )
        if n in fault.get("drop", ()):
            continue
        properties: dict[str, Any] = {"minutes": value} if kind == "compute_minutes" else {}
        if region:
            properties = {"gb": value, "region": fault.get("region", region)}
        usage.append(
            {
                "transaction_id": f"usage_{event_id}",
                "customer_id": who.internal_id,
                "event_type": kind,
                "timestamp": _stamp(when),
                "properties": properties,
            }
        )
    book.metronome.v1.usage.ingest(usage=usage)  # type: ignore[arg-type]


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _latest_closed(world: ParityWorld, name: str) -> PeriodParity:
    closed = [p for p in world.ledger.periods(world.customers[name].stripe_id) if p.closed]
    assert closed, f"{name}: no closed period recorded"
    return max(closed, key=lambda p: p.period_start)


def _failures(output: str) -> list[Any]:
    """The failed customers' errors from the run's report (for an assertion's message)."""
    from billmig_cli.commands.parity import read_report

    name = output.split("parity run ", 1)[1].split(" ", 1)[0]
    return [c["error"] for c in read_report(name, stack_name="billmig")["customers"] if c["status"] == "failed"]


def _results(world: ParityWorld) -> dict[str, Any]:
    found = {}
    for name, who in world.customers.items():
        found[name] = [
            (
                p.period_start,
                p.closed,
                p.passed,
                p.stripe_total_cents,
                p.metronome_total_cents,
                sorted({d.cause.value for d in p.differences}),
            )
            for p in world.ledger.periods(who.stripe_id)
        ]
    return found


@pytest.fixture(scope="module")
def world(book: Book, local_stack: LocalStack) -> Any:
    from billmig_cli import aws_target

    aws_target.pin_local_endpoint(local_stack.endpoint, local_stack.settings.region)
    ssm = local_stack.client("ssm")
    ssm.put_parameter(
        Name=local_stack.outputs["UsageRouterConfigParameter"], Value=ROUTER_CONFIG.read_text(), Type="String",
        Overwrite=True,
    )  # fmt: skip
    t0 = local_stack.clock.now_datetime()
    storage = next(p for p in book.config.prices if p.stripe_price == "storage_gb_us_east")
    ap_south = ResolvedPrice(
        stripe_price="storage_gb_ap_south", product_id=storage.product_id, pricing_group_values={"region": "ap-south"}
    )
    config = book.config.model_copy(
        update={
            "parallel_run_start": month_start(t0.timestamp()),
            "cutover_at": month_start((t0 + timedelta(days=100)).timestamp()),
            "prices": [*book.config.prices, ap_south],
        }
    )
    batch = f"parity-{secrets.token_hex(3)}"
    book.storage.write_json(run_key(batch), MigrationRun(batch_id=batch, config=config).model_dump(mode="json"))
    customers: dict[str, Seeded] = {}
    for name in (*CLEAN, *FAULTS, *EXPLAINED):
        internal = f"p{secrets.token_hex(3)}_{name}"
        small = {"paid": 1_000, "promotional": 500} if name == "drift" else {}
        stripe_id = fresh_customer(
            book, internal, grants=name != "equal_priority", threshold=5_000 if name == "threshold" else None, **small
        )
        customers[name] = Seeded(name, internal, stripe_id)
    s = book.stripe.v1
    unrated_price = next(p for p in s.prices.list(params={"limit": 100}).data if p.lookup_key == "storage_gb_ap_south")
    subscription = s.subscriptions.list(params={"customer": customers["unrated"].stripe_id}).data[0]
    s.subscription_items.create(params={"subscription": subscription.id, "price": unrated_price.id})
    for category in (
        "paid",
        "promotional",
    ):  # equal priority: Stripe takes the older (paid) first, Metronome the credit
        s.billing.credit_grants.create(
            params={
                "customer": customers["equal_priority"].stripe_id,
                "name": f"{category} at 50",
                "category": category,  # type: ignore[typeddict-item]
                "priority": 50,
                "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 10_000}},
                "applicability_config": {"scope": {"price_type": "metered"}},
            }
        )
    for name, who in customers.items():
        if name == "no_contract":  # in the batch's parallel run, but its contract was never made
            book.store.set_phase(
                batch, who.stripe_id, "parallel_run", ingest_alias=who.internal_id,
                dual_write_from=config.parallel_run_start, cutover_at=config.cutover_at,
            )  # fmt: skip
            continue
        target = FirstOfMonthTarget(book.target()) if name == "misaligned" else None
        book.run_steps(batch, who.stripe_id, target)  # type: ignore[arg-type]
        if name == "drift":
            _drifted(book, who)
    local_stack.move_clock(advance=3 * 3600)
    # after the migrated grants' access starts (the hour after Stripe's effective_at, decisions.md (b))
    at = t0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, minutes=5)
    typical = [("api_call", 1, None)] * 3 + [("compute_minutes", 40, None), ("storage_gb", 12, "us-east")]
    for name, who in customers.items():
        if name == "unrated":
            _send(book, who, at, [*typical, ("storage_gb", 30, "ap-south")])
        elif name == "other_case":
            _send(book, who, at, [("compute_minutes", 5, None), ("storage_gb", 50, "us-east")], region="US-East")
        elif name == "dropped":
            _send(book, who, at, [("compute_minutes", 30, None), ("compute_minutes", 70, None)], drop={1})
        elif name in ("equal_priority", "drift"):  # $30: more than the drifted customer's $15 of grants in Stripe
            _send(book, who, at, [("compute_minutes", 1000, None)])
        elif name == "threshold":  # Stripe invoices at $50 mid-period, then the rest at the period end
            crossing = [("compute_minutes", 2000, None), ("storage_gb", 90, "eu-west"), ("api_call", 1, None)]
            _send(book, who, at, crossing)
            later = at + timedelta(hours=1)
            _send(book, who, later, [("compute_minutes", 300, None), ("storage_gb", 40, "eu-west")], first=3)
        elif name == "clean_b":
            _send(book, who, at, [("api_call", 1, None), ("compute_minutes", 900, None), ("storage_gb", 7, "eu-west")])
        else:
            _send(book, who, at, typical)
    period_end = datetime.fromtimestamp(
        s.subscriptions.list(params={"customer": customers["clean_a"].stripe_id}).data[0]["items"]
        .data[0].current_period_end, UTC,
    )  # fmt: skip
    local_stack.move_clock(to=(period_end + timedelta(hours=49)).timestamp())
    _send(book, customers["drift"], period_end + timedelta(hours=1), [("compute_minutes", 500, None)], first=1)
    ledger = DynamoDBParityLedger(local_stack.outputs["ProgressTableName"], client=local_stack.client("dynamodb"))
    yield ParityWorld(batch, customers, ledger, period_end)
    aws_target.unpin()


@pytest.fixture(scope="module")
def first_run(world: ParityWorld) -> Any:
    return _cli(["parity", "run", "--batch", world.batch])


def test_each_fault_is_reported_with_its_class_and_the_clean_customers_pass(world: ParityWorld, first_run: Any) -> None:
    assert first_run.exit_code == 1, first_run.output  # some customers differ
    assert "completed" in first_run.output
    for name in CLEAN:
        period = _latest_closed(world, name)
        assert period.passed, (name, period.model_dump_json(indent=1))
        assert period.stripe_total_cents == period.metronome_total_cents
        assert any(line.stripe_cents for line in period.lines), name  # usage was compared, not an empty invoice
    for name, cause in FAULTS.items():
        period = _latest_closed(world, name)
        assert not period.passed, name
        causes = {d.cause for d in period.differences}
        assert cause in causes, (name, period.model_dump_json(indent=1))
        assert all(d.evidence and d.suggested_fix for d in period.differences)
    case = next(d for d in _latest_closed(world, "other_case").differences if d.cause is Cause.PRICING_GROUP_MISMATCH)
    assert "'US-East'" in case.evidence and "only in case" in case.evidence and "'us-east'" in case.suggested_fix
    unrated = next(d for d in _latest_closed(world, "unrated").differences if d.cause is Cause.PRICING_GROUP_MISMATCH)
    assert "'ap-south'" in unrated.evidence and "add a rate" in unrated.suggested_fix
    tie = next(d for d in _latest_closed(world, "equal_priority").differences if d.cause is Cause.CREDIT_ORDER)
    assert "share a priority" in tie.evidence
    drifted = _latest_closed(world, "drift")
    (drift,) = drifted.differences
    assert drift.cause is Cause.BALANCE_DRIFT and drift.cents == -1_500 and "ran out" in drift.evidence
    assert "settle_balances" in drift.suggested_fix
    assert drifted.passed and drifted.stripe_total_cents == drifted.metronome_total_cents + 1_500  # usage agrees
    open_period = next(p for p in world.ledger.periods(world.customers["drift"].stripe_id) if not p.closed)
    (preview,) = open_period.differences  # the preview: Stripe applies what is left (nothing), Metronome $15
    assert preview.cause is Cause.BALANCE_DRIFT and preview.cents == -1_500
    assert "before this invoice" in preview.evidence


def test_a_threshold_customers_period_is_its_threshold_invoice_and_the_rest_together(
    world: ParityWorld, first_run: Any, book: Book
) -> None:
    """Stripe bills it twice in one period (at $50, then the rest); its grants stay in Stripe until the cutover."""
    who = world.customers["threshold"]
    invoices = book.stripe.v1.invoices.list(params={"customer": who.stripe_id, "limit": 100}).data
    thresholds = [i.id for i in invoices if i.billing_reason == "subscription_threshold"]
    assert len(thresholds) == 1, [(i.id, i.billing_reason) for i in invoices]
    cycle = next(i for i in invoices if i.billing_reason == "subscription_cycle" and i.lines.data)
    assert (cycle.total_pretax_credit_amounts or []) or any(
        i.total_pretax_credit_amounts for i in invoices if i.id in thresholds
    ), "Stripe drew the grants"
    period = _latest_closed(world, "threshold")
    assert period.stripe_invoice_id == cycle.id and period.stripe_threshold_invoice_ids == thresholds
    storage = next(line for line in period.lines if line.key == "storage_gb_eu_west")
    assert storage.stripe_quantity == storage.metronome_quantity == 40  # the last reading, over both invoices
    compute = next(line for line in period.lines if line.key == "compute_minutes")
    assert compute.stripe_quantity == compute.metronome_quantity == 2300
    credits = next(line for line in period.lines if line.key == "credits")
    assert credits.metronome_cents == 0 and credits.stripe_cents
    assert "threshold billing" in (credits.excluded_reason or "")
    assert period.stripe_total_cents == period.metronome_total_cents and period.differences == []


def test_the_gate_holds_back_exactly_the_faulty_ones_and_an_approval_releases_one(
    world: ParityWorld, first_run: Any, local_stack: LocalStack
) -> None:
    now = local_stack.clock.now_datetime()
    released = {n for n, who in world.customers.items() if cutover_verdict(world.ledger, who.stripe_id, now).released}
    assert released == {*CLEAN, *EXPLAINED}
    approved = world.customers["equal_priority"].stripe_id
    result = _cli(["parity", "approve", "--customer", approved, "--reason", "balances checked by finance"])
    assert result.exit_code == 0, result.output
    verdict = cutover_verdict(world.ledger, approved, local_stack.clock.now_datetime())
    assert verdict.released and verdict.approval is not None
    assert verdict.approval.reason == "balances checked by finance" and verdict.approval.approved_by
    assert abs(verdict.approval.approved_at - local_stack.clock.now_datetime()) < timedelta(minutes=5)
    status = _cli(["parity", "status", "--customer", approved, "--customer", world.customers["dropped"].stripe_id])
    assert "released" in status.output and "held back" in status.output


def test_a_fault_storm_on_both_vendors_gives_the_same_results(
    world: ParityWorld, first_run: Any, local_stack: LocalStack
) -> None:
    before = _results(world)
    controls = [local_stack.emulators[name].control for name in ("stripe", "metronome")]
    for control in controls:
        for status in (429, 500, 503):
            control.add_fault(FaultRule(path="^/v[12]/", status=status, rate=0.07))
    try:
        result = _cli(["parity", "run", "--batch", world.batch])
    finally:
        for control in controls:
            control.clear_faults()
    assert result.exit_code == 1, result.output
    assert "0 failed" in result.output, _failures(result.output)
    assert _results(world) == before


def test_a_run_for_one_batch_and_month_records_only_that_months_periods(
    world: ParityWorld, first_run: Any, local_stack: LocalStack
) -> None:
    """`--period` of the closed period: each customer's closed period is checked again (with the same results), its
    open period (the next month) is left as the earlier run recorded it; a month that does not exist starts nothing."""
    month = f"{_latest_closed(world, 'clean_a').period_start:%Y-%m}"
    before = _results(world)
    sfn = local_stack.client("stepfunctions")
    machine = local_stack.outputs["ParityStateMachineArn"]

    result = _cli(["parity", "run", "--batch", world.batch, "--period", month])

    assert result.exit_code == 1, result.output  # the faulty customers' closed periods still differ
    assert "0 failed" in result.output, _failures(result.output)
    run = result.output.split("parity run ", 1)[1].split(" ", 1)[0]
    assert f"-{month}-" in run
    for name, who in world.customers.items():
        periods = world.ledger.periods(who.stripe_id)
        in_month = [p for p in periods if f"{p.period_start:%Y-%m}" == month]
        others = [p for p in periods if f"{p.period_start:%Y-%m}" != month]
        assert in_month and others, (name, [(p.period_start, p.parity_run_id) for p in periods])
        assert all(p.parity_run_id == run for p in in_month), name
        assert all(p.parity_run_id != run for p in others), name
    assert _results(world) == before
    from billmig_cli.commands.parity import read_report

    report = read_report(run, stack_name="billmig")
    shown = {p["period_start"][:7] for customer in report["customers"] for p in customer["periods"]}
    assert shown == {month}, shown

    wrong = _cli(["parity", "run", "--batch", world.batch, "--period", "2026-13"])

    assert wrong.exit_code == 2, wrong.output
    assert "--period" in wrong.output and "nothing was started" in wrong.output
    names = [e["name"] for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
             for e in page["executions"]]  # fmt: skip
    assert not [n for n in names if "2026-13" in n]


def test_the_daily_schedule_fires_through_the_local_scheduler(world: ParityWorld, local_stack: LocalStack) -> None:
    scheduler = local_stack.client("scheduler")
    name = "billmig-parity-local"
    schedule = scheduler.get_schedule(Name=name)
    fields = ("Name", "ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target")
    scheduler.update_schedule(**{k: schedule[k] for k in fields if k in schedule}, State="ENABLED")
    try:
        now = local_stack.clock.now_datetime()
        next_seven = now.replace(hour=7, minute=0, second=0, microsecond=0)
        next_seven += timedelta(days=1) if next_seven <= now else timedelta(0)
        local_stack.move_clock(to=(next_seven + timedelta(minutes=1)).timestamp())
    finally:
        scheduler.update_schedule(**{k: schedule[k] for k in fields if k in schedule}, State="DISABLED")
    sfn = local_stack.client("stepfunctions")
    machine = local_stack.outputs["ParityStateMachineArn"]
    execution = until(
        lambda: next(
            (
                e
                for e in sfn.list_executions(stateMachineArn=machine)["executions"]
                if e["name"] == f"{name}-{next_seven:%Y%m%dT%H%M%SZ}"
            ),
            None,
        ),
        what="the scheduled parity execution",
    )
    done = until(
        lambda: (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d,
        timeout=300,
        what="the scheduled parity run to end",
    )
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["input"]) == {}
    clean = world.customers["clean_a"].stripe_id
    assert any(p.parity_run_id == execution["name"] for p in world.ledger.periods(clean))
