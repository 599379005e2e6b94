"""Rollback of one customer, from the parallel run until its first Metronome invoice is finalized: Stripe bills it
again and Metronome does not.

Each change is its own recorded step (`run_once` on the customer's progress item in its batch), in an order that
loses nothing if it stops anywhere: the request (who, when, why); the router back to Stripe only (phase
`rolled_back`); Metronome unbillable from the scheduled billable instant (a change at the same instant replaces the
scheduled one: Metronome applies a status to usage statements whose service period starts on or after
`effective_at`, so nothing from the cutover on is billed by Metronome); the contract ended (so a later migration
gives the customer a new contract on its balances of that day, never a second live one); the Stripe subscription's
end removed, or the subscription recreated from the instant it ended with the same prices and billing day; then the
usage that went to Metronome only re-sent to Stripe from the usage journal. Once a Metronome invoice of the customer
from the cutover on is finalized, Metronome has billed it: the rollback is refused, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field

from billmig.errors import PermanentError
from billmig.idempotency_keys import idempotency_key
from billmig.metronome.contract_terms import live_subscription
from billmig.metronome.customer import UNBILLABLE
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.snapshot import read_snapshot
from billmig.metronome.storage import MigrationRun, RunStorage, run_key
from billmig.progress import ProgressStore, SubjectProgress
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stripe_source.port import StripeSource
from billmig.stripe_source.views import StripeSubscription
from billmig.usage.routing import CLEANED_UP, CUT_OVER, HELD_BACK, PARALLEL_RUN, ROLLED_BACK, Destination
from billmig.world_clock import Clock

ROLLBACK_PHASES = frozenset({PARALLEL_RUN, CUT_OVER, HELD_BACK, ROLLED_BACK})
ROLLBACK_OF = "billmig_rollback_of"  # metadata of a recreated subscription: the one it replaces
ENDED = frozenset({"canceled", "incomplete_expired"})


class RollbackRefused(PermanentError):
    """The customer cannot be rolled back (Metronome already billed it, or it is not in a migration that can)."""


class ResendResult(Protocol):
    @property
    def outcome(self) -> str: ...


Resend = Callable[[str, Destination, datetime | None, datetime | None], ResendResult]
"""`billmig.usage.resend.resend` wired to its ports: (internal id, destination, since, until)."""


class RollbackRequest(BaseModel):
    stripe_customer_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    requested_by: str = Field(min_length=1)
    batch_id: str | None = None  # found from the progress store when not given

    @property
    def run_id(self) -> str:
        return self.batch_id or ""

    @property
    def subject(self) -> str:
        return self.stripe_customer_id


class RollbackResult(BaseModel):
    batch_id: str
    stripe_customer_id: str
    outcome: str
    steps: dict[str, str]
    requested_by: str
    requested_at: str
    reason: str


@dataclass(frozen=True)
class RollbackPorts:
    storage: RunStorage
    stripe: StripeSource
    metronome: MetronomeTarget
    store: ProgressStore
    resend: Resend
    clock: Clock


def batch_of(store: ProgressStore, stripe_customer_id: str) -> str:
    runs = store.runs_of(stripe_customer_id)
    if not runs:
        raise RollbackRefused(f"{stripe_customer_id}: in no Metronome migration batch (no phase in the progress store)")
    return runs[0]


def _at(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


def _next_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _vendor_id(progress: SubjectProgress, step: str, name: str) -> str:
    record = progress.steps.get(step)
    value = record.vendor_ids.get(name) if record else None
    if value is None:
        raise RollbackRefused(f"{progress.subject}: batch {progress.run_id} has no {name} ({step} never succeeded)")
    return value


def refusal(metronome: MetronomeTarget, customer_id: str, cutover_at: datetime | None) -> str | None:
    """Why Metronome has already billed the customer: a finalized invoice from the cutover on, or a billable one."""
    for invoice in metronome.invoices(customer_id):
        if invoice.status != "FINALIZED":
            continue
        from_cutover = cutover_at is not None and invoice.start is not None and invoice.start >= cutover_at
        if from_cutover or invoice.billable_status == "billable":
            period = "..".join(t.isoformat() if t else "?" for t in (invoice.start, invoice.end))
            return (
                f"Metronome invoice {invoice.id} ({invoice.type}, {period}) is finalized: Metronome has billed this "
                "customer, so Stripe billing it again would bill the period twice"
            )
    return None


def rollback_customer(request: RollbackRequest, ports: RollbackPorts) -> RollbackResult:
    store = ports.store
    stripe_id = request.stripe_customer_id
    batch = request.batch_id or batch_of(store, stripe_id)
    progress = store.get(batch, stripe_id)
    if progress is None or progress.phase not in ROLLBACK_PHASES:
        phase = progress.phase if progress else None
        why = "its batch was cleaned up (meters and prices retired)" if phase == CLEANED_UP else f"phase {phase}"
        raise RollbackRefused(f"{stripe_id}: batch {batch} cannot roll it back: {why}")
    config = MigrationRun.model_validate(ports.storage.read_json(run_key(batch))).config
    metronome_id = _vendor_id(progress, Step.METRONOME_PREPARE, "metronome_customer_id")
    cutover_at = progress.cutover_at
    if progress.phase != ROLLED_BACK:  # a resumed rollback already passed this check
        billed = refusal(ports.metronome, metronome_id, cutover_at)
        if billed:
            raise RollbackRefused(f"{stripe_id}: rollback refused: {billed}")
    snapshot = read_snapshot(ports.storage, batch, stripe_id)
    alias = progress.ingest_alias or snapshot.customer.metadata[config.internal_id_metadata_key].strip()
    done: dict[str, str] = {}

    def step(name: Step, body: Callable[[RunningStep], StepOutcome]) -> dict[str, str]:
        result = run_once(store, StepKey(batch, stripe_id, name), f"rollback:{request.requested_by}", body)
        done[name] = result.outcome
        return result.vendor_ids

    def key(write: str, running: RunningStep) -> str:
        return idempotency_key(
            config.migration_id, Step.METRONOME_ROLLBACK, f"{stripe_id}:{write}", revision=running.revision
        )

    asked = _at(ports.clock.now())
    record = step(
        Step.METRONOME_ROLLBACK,
        lambda _: StepOutcome(
            "requested",
            {"requested_by": request.requested_by, "requested_at": asked.isoformat(), "reason": request.reason},
        ),
    )
    # Every later write is timed from the recorded request, so a resumed attempt sends the same parameters under
    # the same idempotency keys (a key reused with other parameters is refused by Metronome and Stripe alike).
    now = datetime.fromisoformat(record["requested_at"])
    step(Step.METRONOME_ROLLBACK_ROUTE, lambda _: _route_back(store, batch, stripe_id))

    def unbillable(running: RunningStep) -> StepOutcome:
        # At the scheduled billable instant (it replaces that change), else now: Metronome bills nothing from it.
        effective = cutover_at or now.replace(minute=0, second=0, microsecond=0)
        ports.metronome.set_billable_status(metronome_id, UNBILLABLE, effective, key("unbillable", running))
        running.remember({"unbillable_from": effective.isoformat()})
        return StepOutcome(UNBILLABLE, detail=f"effective {effective.isoformat()}")

    step(Step.METRONOME_ROLLBACK_UNBILLABLE, unbillable)

    def end_contract(running: RunningStep) -> StepOutcome:
        contract_id = _vendor_id(progress, Step.METRONOME_CONTRACT, "metronome_contract_id")
        contract = ports.metronome.contract(metronome_id, contract_id)
        ending = _next_hour(now)
        if contract.ending_before is not None and contract.ending_before <= ending:
            return StepOutcome("already ended", detail=contract.ending_before.isoformat())
        ports.metronome.end_contract(metronome_id, contract_id, ending, key("end-contract", running))
        running.remember({"contract_ended_before": ending.isoformat()})
        return StepOutcome("ended", detail=ending.isoformat())

    step(Step.METRONOME_ROLLBACK_END_CONTRACT, end_contract)
    original = live_subscription(snapshot)
    step(
        Step.METRONOME_ROLLBACK_STRIPE,
        lambda running: _stripe_back(
            ports.stripe, original, stripe_id, batch, cutover_at, lambda w: key(w, running), running
        ),
    )

    def resend(_: RunningStep) -> StepOutcome:
        if cutover_at is None or cutover_at > now:
            return StepOutcome("nothing to re-send", detail="no event went to Metronome only")
        return StepOutcome(ports.resend(alias, Destination.STRIPE, cutover_at, None).outcome)

    step(Step.METRONOME_ROLLBACK_RESEND, resend)
    return RollbackResult(
        batch_id=batch,
        stripe_customer_id=stripe_id,
        outcome=ROLLED_BACK,
        steps=done,
        requested_by=record["requested_by"],
        requested_at=record["requested_at"],
        reason=record["reason"],
    )


def _route_back(store: ProgressStore, batch: str, stripe_id: str) -> StepOutcome:
    store.set_phase(batch, stripe_id, ROLLED_BACK)
    return StepOutcome(ROLLED_BACK)


def _stripe_back(
    stripe: StripeSource,
    original: StripeSubscription,
    stripe_id: str,
    batch: str,
    cutover_at: datetime | None,
    key: Callable[[str], str],
    running: RunningStep,
) -> StepOutcome:
    """The subscription billing again: its end removed, or, once it ended, a new one from the instant it ended."""
    recreated = running.vendor_ids.get("recreated_subscription_id")
    if recreated:
        return StepOutcome("recreated", detail=recreated)
    current = stripe.subscription(original.id)
    if current.status not in ENDED:
        if current.schedule_id:
            stripe.release_schedule(current.schedule_id, key(f"release:{current.schedule_id}"))
            running.remember({"released_schedule_id": current.schedule_id})
            current = stripe.subscription(original.id)
        if current.cancel_at_period_end or current.cancel_at:
            stripe.resume_subscription(original.id, key(f"resume:{original.id}"))
            running.remember({"resumed_subscription_id": original.id})
        made = [w for w in ("released_schedule_id", "resumed_subscription_id") if w in running.vendor_ids]
        return StepOutcome("resumed" if made else "still billing", detail=original.id)
    found = [
        s.id
        for s in stripe.subscriptions_of(stripe_id)
        if s.metadata.get(ROLLBACK_OF) == original.id and s.status not in ENDED
    ]
    if found:
        running.remember({"recreated_subscription_id": found[0]})
        return StepOutcome("recreated", detail=found[0])
    # From the instant it stopped billing: its end, or the cutover if Stripe ended it later (never a gap).
    ends = [t for t in (current.ended_at, int(cutover_at.timestamp()) if cutover_at else None) if t is not None]
    ended = min(ends) if ends else None
    if ended is None:
        raise RollbackRefused(f"{stripe_id}: subscription {original.id} ended, but when is unknown")
    made_id = stripe.create_subscription(
        customer_id=stripe_id,
        items=tuple((i.price_id, None if i.meter_id else i.quantity) for i in original.items),
        backdate_start_date=ended,
        anchor=original.billing_cycle_anchor or original.start_date,
        metadata={ROLLBACK_OF: original.id, "billmig_batch": batch},
        idempotency_key=key(f"recreate:{original.id}"),
    )
    running.remember({"recreated_subscription_id": made_id})
    return StepOutcome("recreated", detail=made_id)
