"""Clean-up, once per batch after its customers are cut over: the Stripe side of their billing retired.

First a plan (what `billmig metronome cleanup --plan` prints; it writes nothing): the prices the cut-over
customers' Stripe subscriptions (ended ones included) billed that no live Stripe subscription still uses are
archived (Stripe prices cannot be deleted), and the meters of those prices that no live subscription bills through
any price are deactivated (a deactivated meter takes no events). Whatever is still in use (by a held-back or
rolled-back customer, a customer of another batch, one not migrating) is kept, with the subscriptions that keep it.
Then the run, one recorded step per kind of write, in an order that loses nothing: the cut-over customers' phase
`cleaned_up` and the batch's Stripe-usage-writes-off flag (the router stops sending them to Stripe before the meters
go), the prices archived, the meters deactivated. The plan is stored with the run's documents when the run starts,
so a resumed run does what the first attempt planned, and each write is remembered the moment it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from billmig.feature_flags import FeatureFlags, turn_stripe_writes_off
from billmig.idempotency_keys import idempotency_key
from billmig.metronome.batch_outcome import BatchOutcome, batch_outcome
from billmig.metronome.storage import MigrationRun, RunStorage, run_key
from billmig.progress import ProgressStore
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stigg.errors import InvalidImportFile
from billmig.stripe_source.port import StripeSource
from billmig.usage.routing import CLEANED_UP, CUT_OVER
from billmig.world_clock import Clock

CLEANED = frozenset({CUT_OVER, CLEANED_UP})
NOTHING_TO_CLEAN_UP = "nothing to clean up"


class CleanupRequest(BaseModel):
    batch_id: str = Field(min_length=1)
    runner: str = "cleanup"

    @property
    def run_id(self) -> str:
        return cleanup_run(self.batch_id)

    @property
    def subject(self) -> str:
        return self.batch_id


class CleanupPlan(BaseModel):
    batch_id: str
    customers: list[str]  # cut over: their phase becomes cleaned_up
    left_alone: dict[str, str]  # customer -> its phase (held back, rolled back, failed...)
    archive_prices: list[str]
    keep_prices: dict[str, str]  # price -> why
    deactivate_meters: list[str]
    keep_meters: dict[str, str]  # meter -> why


class CleanupResult(BaseModel):
    batch_id: str
    outcome: str
    plan: CleanupPlan
    steps: dict[str, str]
    batch: BatchOutcome  # the execution's last word: "completed" or "completed with errors", with the counts


def cleanup_key(batch_id: str) -> str:
    return run_key(batch_id).replace("run.json", "cleanup-plan.json")


def cleanup_run(batch_id: str) -> str:
    """The progress run of a batch's clean-up: apart from the batch's own, so its customer counts stay customers."""
    return f"cleanup#{batch_id}"


def _users(stripe: StripeSource, cache: dict[str, list[str]], price_id: str) -> list[str]:
    if price_id not in cache:
        cache[price_id] = stripe.live_subscriptions_with_price(price_id)
    return cache[price_id]


def plan_cleanup(batch_id: str, stripe: StripeSource, store: ProgressStore) -> CleanupPlan:
    subjects = sorted(store.all_in_run(batch_id), key=lambda p: p.subject)
    customers = [p.subject for p in subjects if p.phase in CLEANED]
    left_alone = {p.subject: p.phase or "not in its parallel run" for p in subjects if p.phase not in CLEANED}
    billed = {i.price_id for c in customers for s in stripe.subscriptions_of(c) for i in s.items}
    prices = {p.id: p for p in stripe.prices()} if billed else {}
    users: dict[str, list[str]] = {}
    archive, keep_prices = [], {}
    for price_id in sorted(billed):
        using = _users(stripe, users, price_id)
        if using:
            keep_prices[price_id] = f"billed by live subscription(s) {', '.join(sorted(using))}"
        elif price_id in prices and prices[price_id].active:
            archive.append(price_id)
    deactivate, keep_meters = [], {}
    billed_meters = {m for p in billed if p in prices for m in [prices[p].meter_id] if m is not None}
    meters = {m.id: m for m in stripe.meters()} if billed_meters else {}
    for meter_id in sorted(billed_meters):
        on_meter = sorted(p.id for p in prices.values() if p.meter_id == meter_id)
        in_use = {p: subs for p in on_meter for subs in [_users(stripe, users, p)] if subs}
        if in_use:
            keep_meters[meter_id] = "; ".join(f"price {p} billed by {', '.join(sorted(s))}" for p, s in in_use.items())
        elif meter_id in meters and meters[meter_id].status == "active":
            deactivate.append(meter_id)
    return CleanupPlan(
        batch_id=batch_id,
        customers=customers,
        left_alone=left_alone,
        archive_prices=archive,
        keep_prices=keep_prices,
        deactivate_meters=deactivate,
        keep_meters=keep_meters,
    )


def clean_up(
    request: CleanupRequest,
    storage: RunStorage,
    stripe: StripeSource,
    store: ProgressStore,
    flags: FeatureFlags,
    clock: Clock,
) -> CleanupResult:
    batch = request.batch_id
    try:
        plan = CleanupPlan.model_validate(storage.read_json(cleanup_key(batch)))
    except InvalidImportFile:  # the first attempt: plan now, and keep it for any resume
        plan = plan_cleanup(batch, stripe, store)
        if not plan.customers:  # an empty batch, or none cut over: nothing retires, and a later run plans again
            return CleanupResult(
                batch_id=batch, outcome=NOTHING_TO_CLEAN_UP, plan=plan, steps={}, batch=batch_outcome(store, batch)
            )
        storage.write_json(cleanup_key(batch), plan.model_dump(mode="json"))
    config = MigrationRun.model_validate(storage.read_json(run_key(batch))).config
    done: dict[str, str] = {}

    def step(name: Step, body: Callable[[RunningStep], StepOutcome]) -> None:
        done[name] = run_once(store, StepKey(cleanup_run(batch), batch, name), request.runner, body).outcome

    def key(obj: str, running: RunningStep) -> str:
        return idempotency_key(config.migration_id, Step.METRONOME_CLEANUP, obj, revision=running.revision)

    def route(_: RunningStep) -> StepOutcome:
        for customer in plan.customers:
            store.set_phase(batch, customer, CLEANED_UP)
        flipped = turn_stripe_writes_off(flags, batch, _utc(clock.now()))
        return StepOutcome("stripe usage writes off" if flipped else "already off", detail=f"{len(plan.customers)}")

    step(Step.METRONOME_CLEANUP_ROUTE, route)

    def retire(
        running: RunningStep,
        planned: list[str],
        verb: str,
        left: Callable[[], set[str]],
        write: Callable[[str, str], None],
    ) -> StepOutcome:
        """Each planned write once: remembered the moment it is made; a resumed attempt first reads which are left
        (one made just before a crash is done, its id not yet remembered)."""
        still = left() if running.attempt > 1 else None
        for obj in planned:
            if f"{verb}:{obj}" in running.vendor_ids:
                continue
            if still is None or obj in still:
                write(obj, key(f"{verb}:{obj}", running))
            running.remember({f"{verb}:{obj}": obj})
        return StepOutcome(f"{len(planned)} {verb}")

    step(
        Step.METRONOME_CLEANUP_PRICES,
        lambda running: retire(
            running,
            plan.archive_prices,
            "archived",
            lambda: {p.id for p in stripe.prices() if p.active},
            stripe.archive_price,
        ),
    )
    step(
        Step.METRONOME_CLEANUP_METERS,
        lambda running: retire(
            running,
            plan.deactivate_meters,
            "deactivated",
            lambda: {m.id for m in stripe.meters() if m.status == "active"},
            stripe.deactivate_meter,
        ),
    )
    step(Step.METRONOME_CLEANUP, lambda _: StepOutcome(CLEANED_UP, detail=f"{len(plan.customers)} customers"))
    return CleanupResult(batch_id=batch, outcome=CLEANED_UP, plan=plan, steps=done, batch=batch_outcome(store, batch))


def _utc(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)
