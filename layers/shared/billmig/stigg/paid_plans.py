"""Paid plans, one customer at a time: provisioned backdated in Stigg, then the Stripe subscription cancelled.

The two are separate steps in the progress store, so a crash between them resumes at the Stripe cancel and never
provisions twice; and each is preceded by a lookup (Stigg's subscription by its deterministic id, Stripe's status),
because neither vendor deduplicates those calls by key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from billmig.progress import ProgressStore, StepStatus
from billmig.stigg.entity_progress import CANCEL_STEP, PROVISION_STEP, entity_key
from billmig.stigg.errors import ImportOrderViolated, SubscriptionExists
from billmig.stigg.import_preparation import PaidItem
from billmig.stigg.import_storage import ImportStorage
from billmig.stigg.records import SubscriptionRecord
from billmig.stigg.target import PaidProvision, StiggSubscription, StiggTarget, StripeSubscriptions

LEASE = timedelta(minutes=5)


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
    key = entity_key("paid", record.key)
    store.enrol(request.import_id, key)
    claim = store.claim_step(request.import_id, key, PROVISION_STEP, request.runner, LEASE)
    if claim.already_succeeded:
        return PaidStepResult(
            import_id=request.import_id,
            subscription_id=request.subscription_id,
            step=PROVISION_STEP,
            outcome="already done",
            vendor_id=claim.record.vendor_ids.get("stigg_subscription_id", request.subscription_id),
        )
    existing = target.find_subscription(request.subscription_id) or _ours(
        record, request.subscription_id, target.active_subscriptions(record.customer_id, record.resource_id)
    )
    # Found by the lookup: provisioned by an earlier attempt of this import (a crash before it was recorded), or before.
    outcome = (
        "created" if existing is not None and existing.metadata.get("migrationId") == request.import_id else "skipped"
    )
    if existing is None:
        provision = PaidProvision(
            record=record,
            subscription_id=request.subscription_id,
            stripe_subscription_id=record.billing_id or "",
            migration_id=request.import_id,
        )
        try:
            existing = target.provision_paid(provision)
            outcome = "created"
        except SubscriptionExists as exc:
            existing = _ours(
                record, request.subscription_id, target.active_subscriptions(record.customer_id, record.resource_id)
            )
            if existing is None:
                raise ImportOrderViolated(
                    f"{record.key}: Stigg already has another active subscription for this customer and product: {exc}"
                ) from exc
    store.complete_step(
        request.import_id, key, PROVISION_STEP, {"stigg_subscription_id": existing.subscription_id, "outcome": outcome}
    )
    return PaidStepResult(
        import_id=request.import_id,
        subscription_id=request.subscription_id,
        step=PROVISION_STEP,
        outcome=outcome,
        vendor_id=existing.subscription_id,
    )


def cancel_stripe_subscription(
    request: PaidStepRequest, storage: ImportStorage, stripe: StripeSubscriptions, store: ProgressStore
) -> PaidStepResult:
    record = _record(storage, request)
    stripe_id = record.billing_id or ""
    key = entity_key("paid", record.key)
    progress = store.get(request.import_id, key)
    provisioned = progress.steps.get(PROVISION_STEP) if progress else None
    if provisioned is None or provisioned.status is not StepStatus.SUCCEEDED:
        raise ImportOrderViolated(f"{record.key}: not provisioned in Stigg yet; the Stripe subscription stays")
    claim = store.claim_step(request.import_id, key, CANCEL_STEP, request.runner, LEASE)
    if claim.already_succeeded:
        outcome = "already done"
    elif stripe.subscription_status(stripe_id) == "canceled":
        outcome = "skipped"
    else:
        stripe.cancel_now_without_proration(stripe_id)
        outcome = "cancelled"
    if not claim.already_succeeded:
        store.complete_step(
            request.import_id, key, CANCEL_STEP, {"stripe_subscription_id": stripe_id, "outcome": outcome}
        )
    return PaidStepResult(
        import_id=request.import_id,
        subscription_id=request.subscription_id,
        step=CANCEL_STEP,
        outcome=outcome,
        vendor_id=stripe_id,
    )
