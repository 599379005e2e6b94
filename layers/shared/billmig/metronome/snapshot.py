"""Step 1: the customer as Stripe has it, stored in S3, so every later step (and the plan) works from one reading.

The customer, its subscriptions with items, prices, meters and billing cycle anchor, and its credit grants with
their remaining balances. Later steps read the snapshot by key; the state machine never carries the document.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from billmig.metronome.errors import CustomerBlocked
from billmig.metronome.storage import RunStorage, read_run, snapshot_key
from billmig.progress import ProgressStore
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stripe_source.port import StripeSource
from billmig.stripe_source.views import StripeCreditGrant, StripeCustomer, StripeSubscription

LIVE_STATUSES = ("active", "trialing", "past_due")


class CustomerSnapshot(BaseModel):
    customer: StripeCustomer
    grants: list[StripeCreditGrant]
    taken_at: datetime

    @property
    def live_subscriptions(self) -> list[StripeSubscription]:
        return [s for s in self.customer.subscriptions if s.status in LIVE_STATUSES]


def take_snapshot(stripe: StripeSource, customer_id: str, now: datetime | None = None) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer=stripe.customer(customer_id),
        grants=stripe.credit_grants(customer_id),
        taken_at=now or datetime.now(UTC),
    )


class CustomerStepRequest(BaseModel):
    """What the state machine gives every per-customer step: keys, never documents."""

    batch_id: str
    stripe_customer_id: str
    run_key: str
    runner: str

    @property
    def run_id(self) -> str:
        return self.batch_id

    @property
    def subject(self) -> str:
        return self.stripe_customer_id


class CustomerStepResult(BaseModel):
    batch_id: str
    stripe_customer_id: str
    step: str
    outcome: str
    vendor_ids: dict[str, str]


def result_of(request: CustomerStepRequest, step: str, outcome: str, vendor_ids: dict[str, str]) -> CustomerStepResult:
    return CustomerStepResult(
        batch_id=request.batch_id,
        stripe_customer_id=request.stripe_customer_id,
        step=step,
        outcome=outcome,
        vendor_ids=vendor_ids,
    )


def snapshot_customer(
    request: CustomerStepRequest, storage: RunStorage, stripe: StripeSource, store: ProgressStore
) -> CustomerStepResult:
    from billmig.metronome.triage import triage

    run = read_run(storage, request.run_key)
    key = snapshot_key(request.batch_id, request.stripe_customer_id)

    def body(_: RunningStep) -> StepOutcome:
        snapshot = take_snapshot(stripe, request.stripe_customer_id)
        verdict = triage(snapshot, run.config)
        if not verdict.can_migrate:
            raise CustomerBlocked(f"{request.stripe_customer_id}: {verdict.bucket}: {'; '.join(verdict.reasons)}")
        storage.write_json(key, snapshot.model_dump(mode="json"))
        return StepOutcome("snapshotted", {"snapshot_key": key}, detail=str(verdict.bucket))

    step = StepKey(request.batch_id, request.stripe_customer_id, Step.METRONOME_SNAPSHOT)
    done = run_once(store, step, request.runner, body, enrols=True)  # a customer's first step in its batch
    return result_of(
        request, Step.METRONOME_SNAPSHOT, "already done" if done.already_done else done.outcome, done.vendor_ids
    )


def read_snapshot(storage: RunStorage, batch_id: str, customer_id: str) -> CustomerSnapshot:
    return CustomerSnapshot.model_validate(storage.read_json(snapshot_key(batch_id, customer_id)))
