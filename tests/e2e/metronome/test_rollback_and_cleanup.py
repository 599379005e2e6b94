"""Rollback of a customer (during the parallel run, after its cutover, and of one cut over with a Stripe
subscription schedule) and a batch's clean-up, on the local stack and checked through the SDKs: Stripe bills again
and Metronome does not, nothing is re-sent twice, a rollback is refused once Metronome has billed, a rolled-back
customer migrates again without a second customer or live contract;
clean-up retires only what no live Stripe subscription uses, does what its plan said, and the router stops sending
the batch's customers to Stripe. A crash after every vendor write of these steps, then a rerun, duplicates nothing."""

from __future__ import annotations

import ast
import inspect
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from billmig.adapters.dynamodb_usage_routes import DynamoDBRouteSource
from billmig.adapters.ssm_feature_flags import SSMFeatureFlags
from billmig.metronome import rollback as rollback_module
from billmig.metronome.cleanup import CleanupRequest, clean_up
from billmig.metronome.ports import WRITE_METHODS as METRONOME_WRITES
from billmig.metronome.rollback import RollbackPorts, RollbackRefused, RollbackRequest, rollback_customer
from billmig.stripe_source import port as stripe_port
from billmig.stripe_source.port import WRITE_METHODS as STRIPE_WRITES
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.resend import resend
from billmig.usage.routing import Destination
from billmig.world_clock import OFFSET_VARIABLE
from billmig_cli import metronome_migration as runner
from billmig_cli.main import app
from billmig_local.emulators.control_plane import FaultRule
from billmig_local.stack import LocalStack
from metronome_book import (  # noqa: F401
    ROUTER_CONFIG,
    Book,
    CrashAfter,
    SimulatedCrash,
    book,
    fresh_customer,
    month_start,
    next_month,
)
from suite import metronome_receipts
from test_usage_backfill import ids, route, stripe_accepted, usage
from typer.testing import CliRunner

cli = CliRunner()


@pytest.fixture(scope="module")
def routed(book: Book) -> UsageRouterConfig:
    """The router config in the router's SSM parameter (as `billmig usage configure` stores it)."""
    config = UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text())
    book.stack.client("ssm").put_parameter(
        Name=book.stack.outputs["UsageRouterConfigParameter"],
        Value=config.model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    return config


def ports(book: Book, *, stripe: Any = None, metronome: Any = None) -> RollbackPorts:
    resend_ports = book.resend_ports()
    return RollbackPorts(
        storage=book.storage,
        stripe=stripe or book.source(),
        metronome=metronome or book.target(),
        store=book.store,
        resend=lambda i, d, s, u: resend(resend_ports, i, d, s, u),
        clock=book.stack.clock,
    )


def migrated(book: Book, tag: str) -> tuple[str, str, str]:
    """A fresh customer in its parallel run: (Stripe id, internal id, batch)."""
    alias = f"{tag}-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias, grants=False)
    batch = f"{tag}-{uuid.uuid4().hex[:6]}"
    book.start_run(batch)
    book.run_steps(batch, customer)
    return customer, alias, batch


def metronome_id(book: Book, batch: str, customer: str) -> str:
    progress = book.store.get(batch, customer)
    assert progress is not None
    return progress.steps["metronome.prepare"].vendor_ids["metronome_customer_id"]


def cut_over(
    book: Book, batch: str, customer: str, cutover: datetime, *, ended: bool = False, schedule: bool = False
) -> str:
    """What a cutover leaves (its own step builds it): the Stripe subscription ending at period end (or ended; or,
    `schedule`, a subscription schedule from it ending in `cancel`, through the port writes the cutover's
    `stripe_end: subscription_schedule` makes), Metronome billable from the cutover, the router's phase `cut_over`.
    Returns the Stripe subscription id."""
    (sub,) = book.stripe.v1.subscriptions.list(params={"customer": customer}).data
    if ended:
        book.stripe.v1.subscriptions.cancel(sub.id)
    elif schedule:
        source = book.source()
        made = source.create_schedule(sub.id, f"test:{batch}:schedule")
        source.end_schedule_with_cancel(made, f"test:{batch}:cancel")
        ending = book.stripe.v1.subscriptions.retrieve(sub.id)
        assert ending.schedule == made and ending.cancel_at_period_end is True  # Stripe ends it at its period end
    else:
        book.stripe.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    book.target().set_billable_status(
        metronome_id(book, batch, customer), "billable", cutover, f"test:{batch}:billable"
    )
    book.store.set_phase(batch, customer, "cut_over", cutover_at=cutover)
    return str(sub.id)


def schedule(book: Book, customer_id: str) -> list[tuple[str, datetime]]:
    """Every billable-status change of a Metronome customer, scheduled ones included (the emulator's view)."""
    url = book.stack.emulators["metronome"].url + "/_metronome/billable-status"
    changes = httpx.get(url, params={"customer_id": customer_id}).json()
    return [(c["value"], datetime.fromisoformat(c["effective_at"].replace("Z", "+00:00"))) for c in changes]


def contracts(book: Book, customer_id: str) -> list[Any]:
    return list(book.metronome.v2.contracts.list(customer_id=customer_id))


def destinations(book: Book, alias: str) -> frozenset[Destination]:
    found = DynamoDBRouteSource(book.stack.outputs["ProgressTableName"], client=book.stack.client("dynamodb"))
    route_ = found.route_of(alias)
    assert route_ is not None
    return route_.destinations(book.stack.clock.now_datetime())


def test_the_crash_points_are_every_writing_method_of_the_stripe_port() -> None:
    methods = {n for n in vars(stripe_port.StripeSource) if not n.startswith("_")}
    verbs = ("create", "cancel", "end", "resume", "release", "archive", "deactivate", "update", "set", "add")
    assert {n for n in methods if n.split("_")[0] in verbs} == set(STRIPE_WRITES)


def test_a_rollback_in_the_parallel_run_then_a_remigration(book: Book, aws: LocalStack, routed: Any) -> None:
    customer, alias, batch = migrated(book, "rb-parallel")
    # The next month boundary from the clock (other modules move it past the book's): a billable change ahead.
    cutover = next_month(month_start(aws.clock.now()))
    subscription = cut_over(book, batch, customer, cutover)
    met = metronome_id(book, batch, customer)
    assert ("billable", cutover) in schedule(book, met)

    done = cli.invoke(app, ["metronome", "rollback", "--customer", customer, "--reason", "parity off", "--by", "ops"])
    assert done.exit_code == 0, done.output
    assert f"batch {batch}" in done.output and "rolled_back, by ops" in done.output

    assert book.stripe.v1.subscriptions.retrieve(subscription).cancel_at_period_end is False
    assert [v for v, _ in schedule(book, met) if v == "billable"] == []  # the scheduled billable is superseded
    assert book.metronome.v1.customers.retrieve(customer_id=met).data.current_billable_status.value == "unbillable"
    (old,) = contracts(book, met)
    assert old.ending_before is not None
    assert destinations(book, alias) == {Destination.STRIPE}
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "rolled_back"
    record = progress.steps["metronome.rollback"].vendor_ids
    assert (record["requested_by"], record["reason"]) == ("ops", "parity off")

    again = CrashAfter(book.target()), CrashAfter(book.source(), writes=STRIPE_WRITES)
    rollback_customer(
        RollbackRequest(stripe_customer_id=customer, reason="again", requested_by="ops"),
        ports(book, metronome=again[0], stripe=again[1]),
    )
    assert again[0].writes == again[1].writes == []  # every step already done

    # Migrated again later, from the next month: the same Metronome customer, a new contract, the old one ended.
    batch2 = f"rb-again-{uuid.uuid4().hex[:6]}"
    later = book.config.model_copy(
        update={
            "parallel_run_start": cutover,
            "cutover_at": cutover.replace(month=cutover.month % 12 + 1, year=cutover.year + cutover.month // 12),
        }
    )
    from billmig.metronome.storage import MigrationRun, run_key

    book.storage.write_json(run_key(batch2), MigrationRun(batch_id=batch2, config=later).model_dump(mode="json"))
    for _ in range(2):  # the second run finds everything
        book.run_steps(batch2, customer)
    assert [c.id for c in book.metronome.v1.customers.list(ingest_alias=alias)] == [met]
    found = contracts(book, met)
    assert len(found) == 2 and len([c for c in found if c.ending_before is None]) == 1
    assert destinations(book, alias) == {Destination.STRIPE, Destination.METRONOME}


def test_a_rollback_after_cutover_recreates_the_ended_subscription_and_resends_once(
    book: Book, aws: LocalStack, routed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, alias, batch = migrated(book, "rb-cutover")
    cutover = aws.clock.now_datetime().replace(microsecond=0) + timedelta(minutes=1)
    book.store.set_phase(batch, customer, "cut_over", cutover_at=cutover)
    aws.move_clock(to=(cutover + timedelta(hours=1)).timestamp())
    monkeypatch.setenv(OFFSET_VARIABLE, str(aws.clock.now() - time.time()))  # in-process code on the world clock
    after = usage(alias, [cutover + timedelta(minutes=1 + 5 * i) for i in range(8)], f"{alias}-after")
    route(aws, after)  # Metronome only
    assert [stripe_accepted(book)[i] for i in ids(after)] == [0] * len(after)
    old = cut_over(book, batch, customer, cutover, ended=True)

    result = rollback_customer(RollbackRequest(stripe_customer_id=customer, reason="r", requested_by="t"), ports(book))
    assert result.steps["metronome.rollback.stripe_subscription"] == "recreated"
    subs = book.stripe.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    (new,) = [s for s in subs if s.metadata.to_dict().get("billmig_rollback_of") == old]
    assert new.status == "active" and new.start_date == int(cutover.timestamp())
    resent = result.steps["metronome.rollback.resend"]
    assert [stripe_accepted(book)[i] for i in ids(after)] == [1] * len(after), resent  # re-sent to Stripe once
    assert destinations(book, alias) == {Destination.STRIPE}

    rollback_customer(RollbackRequest(stripe_customer_id=customer, reason="r", requested_by="t"), ports(book))
    assert [stripe_accepted(book)[i] for i in ids(after)] == [1] * len(after)
    assert len(book.stripe.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data) == 2


def test_a_rollback_is_refused_once_a_metronome_invoice_is_finalized(book: Book, aws: LocalStack) -> None:
    customer, _, batch = migrated(book, "rb-refused")
    cutover = aws.clock.now_datetime().replace(minute=0, second=0, microsecond=0)
    cut_over(book, batch, customer, cutover)
    met = metronome_id(book, batch, customer)
    at = cutover.isoformat().replace("+00:00", "Z")
    book.metronome.v1.customers.commits.create(
        customer_id=met,
        type="PREPAID",
        product_id=book.config.commit_product_id,
        priority=1,
        access_schedule={
            "schedule_items": [{"amount": 500, "starting_at": at, "ending_before": "2099-01-01T00:00:00Z"}]
        },
        invoice_schedule={"schedule_items": [{"timestamp": at, "amount": 500}]},
    )
    recording = CrashAfter(book.target()), CrashAfter(book.source(), writes=STRIPE_WRITES)
    with pytest.raises(RollbackRefused, match="is finalized"):
        rollback_customer(
            RollbackRequest(stripe_customer_id=customer, reason="late", requested_by="t"),
            ports(book, metronome=recording[0], stripe=recording[1]),
        )
    assert recording[0].writes == recording[1].writes == []
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "cut_over" and "metronome.rollback" not in progress.steps


# (vendor, write, what the cutover left in Stripe: the subscription ending at period end, a schedule ending it, or
# the subscription already ended)
ROLLBACK_POINTS = [
    ("metronome", "set_billable_status", "period_end"),
    ("metronome", "end_contract", "period_end"),
    ("stripe", "resume_subscription", "period_end"),
    ("stripe", "release_schedule", "schedule"),
    ("stripe", "create_subscription", "ended"),
]


def test_the_rollback_crash_points_are_every_vendor_write_the_rollback_makes() -> None:
    """Read from the rollback's code: every call of a port's write method, so a new write cannot miss its crash."""
    tree = ast.parse(inspect.getsource(rollback_module))
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    writes = {("stripe", m) for m in called & set(STRIPE_WRITES)} | {
        ("metronome", m) for m in called & set(METRONOME_WRITES)
    }
    assert writes == {(vendor, method) for vendor, method, _ in ROLLBACK_POINTS}


@pytest.mark.parametrize(("vendor", "method", "left"), ROLLBACK_POINTS)
def test_a_rollback_crashed_after_each_write_resumes_with_no_duplicate(
    book: Book, aws: LocalStack, routed: Any, vendor: str, method: str, left: str
) -> None:
    customer, _, batch = migrated(book, f"rb-crash-{method[:6]}")
    cutover = aws.clock.now_datetime().replace(minute=0, second=0, microsecond=0)
    ended = left == "ended"
    old = cut_over(book, batch, customer, cutover, ended=ended, schedule=left == "schedule")
    crashing = CrashAfter(book.target(), method) if vendor == "metronome" else None
    stripe = CrashAfter(book.source(), method, writes=STRIPE_WRITES) if vendor == "stripe" else None
    request = RollbackRequest(stripe_customer_id=customer, reason="crash", requested_by="t")
    with pytest.raises(SimulatedCrash):
        rollback_customer(request, ports(book, metronome=crashing, stripe=stripe))
    # The resume: the Lambda retried (another runner once the lease lapses; here the same one).
    recording = CrashAfter(book.target()), CrashAfter(book.source(), writes=STRIPE_WRITES)
    rollback_customer(request, ports(book, metronome=recording[0], stripe=recording[1]))
    if method != "set_billable_status":  # repeated under the same Idempotency-Key: Metronome replays it
        assert method not in recording[0].writes + recording[1].writes
    subs = book.stripe.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    live = [s for s in subs if s.status == "active"]
    assert len(live) == 1 and live[0].cancel_at_period_end is False
    assert len(subs) == (2 if ended else 1)
    met = metronome_id(book, batch, customer)
    assert [v for v, _ in schedule(book, met) if v == "billable"] == []
    assert len(contracts(book, met)) == 1
    assert old in {s.id for s in subs}
    schedules = book.stripe.v1.subscription_schedules.list(params={"customer": customer}).data
    if left == "schedule":  # released once, the subscription its own again, with no end left on it
        assert [(s.status, s.released_subscription) for s in schedules] == [("released", old)]
        assert (live[0].schedule, live[0].cancel_at) == (None, None)
        assert recording[1].writes == []  # the release had reached Stripe; nothing else was due
    else:
        assert schedules == []


def test_a_rollback_of_a_schedule_cutover_releases_the_schedule_and_stripe_bills_the_next_period(
    book: Book, aws: LocalStack, routed: Any
) -> None:
    """Cut over with `stripe_end: subscription_schedule` (a schedule ending the subscription at its period end),
    rolled back before that end: the schedule released, the subscription billing on past it, Metronome billing
    nothing."""
    customer, _, batch = migrated(book, "rb-schedule")
    (sub,) = book.stripe.v1.subscriptions.list(params={"customer": customer}).data
    boundary = book.source().subscription(sub.id).current_period_end
    assert boundary is not None and boundary > aws.clock.now()
    cutover = datetime.fromtimestamp(boundary, UTC)
    cut_over(book, batch, customer, cutover, schedule=True)
    met = metronome_id(book, batch, customer)
    (made,) = book.stripe.v1.subscription_schedules.list(params={"customer": customer}).data
    assert (made.status, made.end_behavior) == ("active", "cancel")

    done = cli.invoke(app, ["metronome", "rollback", "--customer", customer, "--reason", "schedule", "--by", "ops"])
    assert done.exit_code == 0, done.output
    assert "metronome.rollback.stripe_subscription: resumed" in done.output, done.output
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "rolled_back"
    assert progress.steps["metronome.rollback.stripe_subscription"].vendor_ids["released_schedule_id"] == made.id
    released = book.stripe.v1.subscription_schedules.retrieve(made.id)
    assert (released.status, released.released_subscription, released.subscription) == ("released", sub.id, None)
    back = book.stripe.v1.subscriptions.retrieve(sub.id)
    assert (back.status, back.schedule, back.cancel_at, back.cancel_at_period_end) == ("active", None, None, False)
    assert [v for v, _ in schedule(book, met) if v == "billable"] == []

    # Past the period end the schedule would have ended it at: Stripe billed that period and bills the next one.
    aws.move_clock(to=boundary + 2 * 3600)
    after = book.stripe.v1.subscriptions.retrieve(sub.id)
    assert after.status == "active" and after.ended_at is None
    assert after.items.data[0].current_period_start == boundary
    invoices = book.stripe.v1.invoices.list(params={"customer": customer, "limit": 100}).data
    assert boundary in {i.period_end for i in invoices if i.billing_reason == "subscription_cycle"}
    assert [i.id for i in invoices if i.metadata and i.metadata.to_dict().get("metronome_id")] == []
    assert book.metronome.v1.customers.retrieve(customer_id=met).data.current_billable_status.value == "unbillable"
    assert len(book.stripe.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data) == 1


# --- clean-up ---------------------------------------------------------------------------------------------------
def metered_price(book: Book, tag: str, meter: str | None = None) -> tuple[str, str]:
    """A metered price on its own new meter (or on `meter`): (price, meter)."""
    c = book.stripe.v1
    if meter is None:
        meter = c.billing.meters.create(
            params={"display_name": tag, "event_name": tag, "default_aggregation": {"formula": "sum"}}
        ).id
    product = c.products.create(params={"name": tag}).id
    price = c.prices.create(
        params={
            "currency": "usd",
            "product": product,
            "unit_amount": 3,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter},
        }
    ).id
    return price, meter


@pytest.fixture()
def cleanup_batch(book: Book) -> Iterator[dict[str, Any]]:
    """A batch of two: `gone` cut over (its subscription ended) billed a price of its own and a shared one, `held`
    (held back, still billing) the shared one. Its own price and meter are unused; the shared ones are in use."""
    tag = uuid.uuid4().hex[:6]
    own, own_meter = metered_price(book, f"cleanup_own_{tag}")
    shared, shared_meter = metered_price(book, f"cleanup_shared_{tag}")
    batch = f"cleanup-{tag}"
    book.start_run(batch)
    people = {}
    for name, prices, phase in (("gone", [own, shared], "cut_over"), ("held", [shared], "held_back")):
        customer = book.stripe.v1.customers.create(params={"name": f"{name} {tag}"}).id
        sub = book.stripe.v1.subscriptions.create(
            params={"customer": customer, "items": [{"price": p} for p in prices]}
        )
        if name == "gone":
            book.stripe.v1.subscriptions.cancel(sub.id)
        book.store.set_phase(batch, customer, phase, ingest_alias=f"{name}-{tag}")
        people[name] = customer
    yield {"batch": batch, "own": own, "own_meter": own_meter, "shared": shared, "shared_meter": shared_meter, **people}


def test_cleanup_retires_only_what_no_live_subscription_uses_as_planned(
    book: Book, aws: LocalStack, cleanup_batch: dict[str, Any]
) -> None:
    b = cleanup_batch
    args = ["metronome", "cleanup", "--batch", b["batch"], "--stripe-api-key", "sk_test_local"]
    planned = cli.invoke(app, [*args, "--stripe-api-base", aws.emulators["stripe"].url, "--plan", "--json"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.output)
    assert plan["archive_prices"] == [b["own"]] and plan["deactivate_meters"] == [b["own_meter"]]
    assert list(plan["keep_prices"]) == [b["shared"]] and list(plan["keep_meters"]) == [b["shared_meter"]]
    assert plan["left_alone"] == {b["held"]: "held_back"}
    assert book.stripe.v1.prices.retrieve(b["own"]).active is True  # the plan wrote nothing

    done = runner.cleanup(b["batch"])  # the Lambda
    assert done["plan"] == plan
    s = book.stripe.v1
    assert (s.prices.retrieve(b["own"]).active, s.prices.retrieve(b["shared"]).active) == (False, True)
    assert s.billing.meters.retrieve(b["own_meter"]).status == "inactive"
    assert s.billing.meters.retrieve(b["shared_meter"]).status == "active"
    phases = {p.subject: p.phase for p in book.store.all_in_run(b["batch"])}
    assert phases == {b["gone"]: "cleaned_up", b["held"]: "held_back"}
    flags = SSMFeatureFlags(aws.outputs["FeatureFlagsParameterName"], client=aws.client("ssm")).read()
    assert b["batch"] in flags["stripe_usage_writes_off"]
    reported = cli.invoke(app, ["usage", "dual-write", "--batch", b["batch"]])
    assert "decommissioned since" in reported.output, reported.output
    tag = b["batch"].removeprefix("cleanup-")
    late = usage(f"gone-{tag}", [aws.clock.now_datetime() - timedelta(hours=2)], f"late-{tag}")
    route(aws, late)  # through the router Lambda: the flag says Metronome only, whatever the event's time
    assert stripe_accepted(book)[ids(late)[0]] == 0
    assert sum(metronome_receipts(book.metronome, ids(late)).values()) == 1


@pytest.mark.parametrize("method", ["archive_price", "deactivate_meter"])
def test_a_cleanup_crashed_after_each_write_resumes_with_no_duplicate(
    book: Book, aws: LocalStack, cleanup_batch: dict[str, Any], method: str
) -> None:
    b = cleanup_batch
    flags = SSMFeatureFlags(aws.outputs["FeatureFlagsParameterName"], client=aws.client("ssm"))
    crashing = CrashAfter(book.source(), method, writes=STRIPE_WRITES)
    request = CleanupRequest(batch_id=b["batch"])
    with pytest.raises(SimulatedCrash):
        clean_up(request, book.storage, crashing, book.store, flags, aws.clock)
    recording = CrashAfter(book.source(), writes=STRIPE_WRITES)
    result = clean_up(request, book.storage, recording, book.store, flags, aws.clock)
    assert method not in recording.writes
    assert result.plan.archive_prices == [b["own"]] and result.plan.deactivate_meters == [b["own_meter"]]
    assert book.stripe.v1.billing.meters.retrieve(b["own_meter"]).status == "inactive"
    assert book.stripe.v1.prices.retrieve(b["own"]).active is False


def injected(stack: LocalStack, since: float) -> int:
    """Faults the emulators injected since `since` (their in-process request logs)."""
    controls = [stack.emulators[name].control for name in ("stripe", "metronome")]
    return sum(1 for c in controls for entry in list(c.log) if entry.injected and entry.at >= since)


def test_a_rollback_and_a_cleanup_under_a_fault_storm_end_as_without_it(
    book: Book, aws: LocalStack, routed: Any, cleanup_batch: dict[str, Any]
) -> None:
    customer, _, batch = migrated(book, "rb-storm")
    cut_over(book, batch, customer, book.config.cutover_at)
    controls = [aws.emulators[name].control for name in ("stripe", "metronome")]
    for control in controls:
        for status in (429, 500, 503):
            control.add_fault(FaultRule(path="^/v[12]/", status=status, rate=0.07))
    request = RollbackRequest(stripe_customer_id=customer, reason="storm", requested_by="t")
    since = controls[0].now()
    for control in controls:
        control.seed_faults(2)  # draws that reach this test's few requests
    flags = SSMFeatureFlags(aws.outputs["FeatureFlagsParameterName"], client=aws.client("ssm"))
    try:
        for _ in range(40):  # Step Functions' Retry on the transient errors, as the Lambdas would get it
            try:
                rollback_customer(request, ports(book))
                clean_up(
                    CleanupRequest(batch_id=cleanup_batch["batch"]),
                    book.storage,
                    book.source(),
                    book.store,
                    flags,
                    aws.clock,
                )
                break
            except Exception as exc:
                assert getattr(exc, "transient", False), exc
        else:
            pytest.fail("no success after 40 attempts")
    finally:
        for control in controls:
            control.clear_faults()
    assert injected(aws, since) > 0, "the storm injected nothing"
    assert book.stripe.v1.subscriptions.list(params={"customer": customer}).data[0].cancel_at_period_end is False
    assert book.stripe.v1.prices.retrieve(cleanup_batch["own"]).active is False
    assert book.stripe.v1.billing.meters.retrieve(cleanup_batch["own_meter"]).status == "inactive"
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "rolled_back"
