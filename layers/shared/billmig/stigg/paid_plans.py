"""Paid plans, one customer at a time: provisioned backdated in Stigg, then the Stripe subscription cancelled.

The two are separate steps in the progress store, so a crash between them resumes at the Stripe cancel and never
provisions twice; and each is preceded by a lookup (Stigg's subscription by its deterministic id, Stripe's status),
because neither vendor deduplicates those calls by key.
"""

from __future__ import annotations

from pydantic import BaseModel

from billmig.progress import ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stigg.entity_progress import entity_key
from billmig.stigg.errors import ImportOrderViolated, SubscriptionExists
from billmig.stigg.import_preparation import PaidItem
from billmig.stigg.import_storage import ImportStorage
from billmig.stigg.records import SubscriptionRecord
from billmig.stigg.target import PaidProvision, StiggSubscription, StiggTarget
from billmig.stripe_source.port import StripeSource


class PaidStepRequest(PaidItem):
    runner: str


class PaidStepResult(BaseModel):
    import_id: str
    subscription_id: str
    step: str
    outcome: str
    vendor_id: str


def _record(storage: ImportStorage, item: PaidItem) -> SubscriptionRecord:
    (raw,) = storage.read_json(item.chunk_key)
    return SubscriptionRecord.model_validate(raw)


def _ours(
    record: SubscriptionRecord, subscription_id: str, active: list[StiggSubscription]
) -> StiggSubscription | None:
    for subscription in active:
        if subscription.subscription_id == subscription_id:
            return subscription
    for subscription in active:
        if subscription.plan_id == record.plan_id and subscription.metadata.get("migratedFrom") == record.billing_id:
            return subscription
    return None


def provision_paid_subscription(
    request: PaidStepRequest, storage: ImportStorage, target: StiggTarget, store: ProgressStore
) -> PaidStepResult:
    record = _record(storage, request)

    def provision(_: RunningStep) -> StepOutcome:
        existing = target.find_subscription(request.subscription_id) or _ours(
            record, request.subscription_id, target.active_subscriptions(record.customer_id, record.resource_id)
        )
        # Found: provisioned by an earlier attempt of this import (a crash before it was recorded), or before it.
        if existing is not None:
            mine = existing.metadata.get("migrationId") == request.import_id
            return StepOutcome("created" if mine else "skipped", {"stigg_subscription_id": existing.subscription_id})
        provision = PaidProvision(
            record=record,
            subscription_id=request.subscription_id,
            stripe_subscription_id=record.billing_id or "",
            migration_id=request.import_id,
        )
        try:
            made = target.provision_paid(provision)
        except SubscriptionExists as exc:
            found = _ours(
                record, request.subscription_id, target.active_subscriptions(record.customer_id, record.resource_id)
            )
            if found is None:
                raise ImportOrderViolated(
                    f"{record.key}: Stigg already has another active subscription for this customer and product: {exc}"
                ) from exc
            return StepOutcome("created", {"stigg_subscription_id": found.subscription_id})
        return StepOutcome("created", {"stigg_subscription_id": made.subscription_id})

    key = StepKey(request.import_id, entity_key("paid", record.key), Step.STIGG_PROVISION)
    done = run_once(store, key, request.runner, provision)
    return PaidStepResult(
        import_id=request.import_id,
        subscription_id=request.subscription_id,
        step=key.step,
        outcome="already done" if done.already_done else done.outcome,
        vendor_id=done.vendor_ids.get("stigg_subscription_id", request.subscription_id),
    )


def cancel_stripe_subscription(
    request: PaidStepRequest, storage: ImportStorage, stripe: StripeSource, store: ProgressStore
) -> PaidStepResult:
    """At once, without proration and without a final invoice: Stigg bills from the backdated start."""
    record = _record(storage, request)
    stripe_id = record.billing_id or ""
    subject = entity_key("paid", record.key)
    progress = store.get(request.import_id, subject)
    provisioned = progress.steps.get(Step.STIGG_PROVISION) if progress else None
    if provisioned is None or provisioned.status is not StepStatus.SUCCEEDED:
        raise ImportOrderViolated(f"{record.key}: not provisioned in Stigg yet; the Stripe subscription stays")

    def cancel(_: RunningStep) -> StepOutcome:
        if stripe.subscription_status(stripe_id) == "canceled":
            return StepOutcome("skipped", {"stripe_subscription_id": stripe_id})
        stripe.cancel_subscription(stripe_id, invoice_now=False, prorate=False)
        return StepOutcome("cancelled", {"stripe_subscription_id": stripe_id})

    done = run_once(store, StepKey(request.import_id, subject, Step.STRIPE_CANCEL), request.runner, cancel)
    return PaidStepResult(
        import_id=request.import_id,
        subscription_id=request.subscription_id,
        step=Step.STRIPE_CANCEL,
        outcome="already done" if done.already_done else done.outcome,
        vendor_id=stripe_id,
    )
