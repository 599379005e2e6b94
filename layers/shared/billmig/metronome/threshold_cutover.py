"""The cutover of a threshold-billing customer (decisions.md (c)), at its period boundary, as separate steps.

1. End the Stripe subscription now (`invoice_now`, no proration) and wait until its final invoice is finalized:
   Stripe applies credits at finalization, so only then is the remaining balance final.
2. Move what is left of each Stripe grant onto the contract (`v2.contracts.edit`, `add_commits` / `add_credits`
   with decisions.md (b)'s rules, access from the boundary), read back and reconciled to the cent.
3. Enable auto-recharge (`add_prepaid_balance_threshold_configuration`, Stripe payment gate, the config's amounts).
   Auto-recharge ignores unbillable status, so this step refuses to run before the boundary, when the billable
   switch is due; it is never on during the parallel run.
4. Billable from the boundary (`billmig.metronome.cutover.set_billable_at_boundary`), then the phase switch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from billmig.idempotency_keys import metronome_uniqueness_key
from billmig.metronome.contract import StepOrderViolated, reconcile
from billmig.metronome.contract_terms import balance_terms, ceil_hour, grant_moves
from billmig.metronome.cutover import finish, not_before, released, step_key
from billmig.metronome.errors import (
    AutoRechargeDisabled,
    CreditReconciliationFailed,
    FinalInvoicePending,
    MetronomeAlreadyExists,
)
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.storage import RunStorage
from billmig.progress import ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stripe_source.port import StripeSource
from billmig.world_clock import Clock

ENDED = ("canceled", "incomplete_expired")
DRAFT = "draft"


def end_stripe_now(
    request: CustomerStepRequest, storage: RunStorage, stripe: StripeSource, store: ProgressStore, clock: Clock
) -> CustomerStepResult:
    cut = released(request, storage, store)
    stripe_id, sub_id = request.stripe_customer_id, cut.subscription.id
    not_before(cut.boundary, clock, f"{stripe_id}: ending {sub_id}")

    def body(_: RunningStep) -> StepOutcome:
        # A DELETE takes no idempotency key (decisions.md (d)): the status read first makes it once.
        cancelled = stripe.subscription_status(sub_id) not in ENDED
        if cancelled:
            stripe.cancel_subscription(sub_id, invoice_now=True, prorate=False)
        invoices = stripe.invoices(sub_id)
        if invoices and invoices[0].status == DRAFT:
            raise FinalInvoicePending(f"{stripe_id}: final invoice {invoices[0].id} of {sub_id} is still a draft")
        final = invoices[0].id if invoices else "none"
        return StepOutcome(
            "ended" if cancelled else "found",
            {"stripe_subscription_id": sub_id, "stripe_final_invoice_id": final},
            detail=f"{sub_id} ended, final invoice {final} finalized",
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_STRIPE_END_NOW), request.runner, body)
    return finish(request, Step.METRONOME_STRIPE_END_NOW, done)


def move_balance(
    request: CustomerStepRequest,
    storage: RunStorage,
    stripe: StripeSource,
    target: MetronomeTarget,
    store: ProgressStore,
) -> CustomerStepResult:
    cut = released(request, storage, store)
    stripe_id = request.stripe_customer_id
    progress = store.get(request.batch_id, stripe_id)
    ended = progress.steps.get(Step.METRONOME_STRIPE_END_NOW) if progress else None
    if ended is None or ended.status is not StepStatus.SUCCEEDED:
        raise StepOrderViolated(f"{stripe_id}: Stripe's final invoice is not finalized yet: no balance to move")
    start = ceil_hour(cut.boundary)
    fresh = cut.snapshot.model_copy(update={"grants": stripe.credit_grants(stripe_id)})
    moves = [
        dataclasses.replace(m, starting_at=max(start, m.starting_at)) if m.target and m.starting_at else m
        for m in grant_moves(fresh, cut.subscription, cut.config)
    ]
    moves = [
        m for m in moves if not (m.target and m.ending_before and m.starting_at and m.ending_before <= m.starting_at)
    ]
    moved = [m for m in moves if m.target]

    def body(running: RunningStep) -> StepOutcome:
        contract = target.contract(cut.metronome_customer_id, cut.metronome_contract_id)
        have = {b.name for b in contract.balances}
        missing = [m for m in moved if m.grant_id not in have]
        wrote = False
        if missing:
            edit: dict[str, Any] = {
                "add_commits": [balance_terms(m, cut.config) for m in missing if m.target == "commit"],
                "add_credits": [balance_terms(m, cut.config) for m in missing if m.target == "credit"],
            }
            try:
                target.edit_contract(
                    cut.metronome_customer_id,
                    cut.metronome_contract_id,
                    {k: v for k, v in edit.items() if v},
                    uniqueness_key=metronome_uniqueness_key(
                        cut.config.migration_id, Step.METRONOME_MOVE_BALANCE, stripe_id, revision=running.revision
                    ),
                    idempotency_key=step_key(cut.config, Step.METRONOME_MOVE_BALANCE, stripe_id, running.revision),
                )
                wrote = True
            except MetronomeAlreadyExists:
                pass  # an earlier attempt's edit: the read back below finds its balances
        problems = reconcile(target.contract(cut.metronome_customer_id, cut.metronome_contract_id), moved)
        if problems:
            raise CreditReconciliationFailed(
                f"{stripe_id} contract {cut.metronome_contract_id}: " + "; ".join(problems)
            )
        return StepOutcome(
            "moved" if wrote else "found",
            detail=f"{len(moved)} grants, {sum(m.remaining for m in moved)} cents, from {start.isoformat()}",
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_MOVE_BALANCE), request.runner, body)
    return finish(request, Step.METRONOME_MOVE_BALANCE, done)


def enable_auto_recharge(
    request: CustomerStepRequest, storage: RunStorage, target: MetronomeTarget, store: ProgressStore, clock: Clock
) -> CustomerStepResult:
    cut = released(request, storage, store)
    stripe_id = request.stripe_customer_id
    not_before(cut.boundary, clock, f"{stripe_id}: auto-recharge (never before billable is due)")
    recharge = cut.config.auto_recharge

    def body(running: RunningStep) -> StepOutcome:
        contract = target.contract(cut.metronome_customer_id, cut.metronome_contract_id)
        added = contract.auto_recharge_enabled is None
        if added:
            configuration = {
                "commit": {"product_id": cut.config.commit_product_id, "name": "Auto-recharge"},
                "is_enabled": True,
                "payment_gate_config": {"payment_gate_type": "STRIPE", "stripe_config": {"payment_type": "INVOICE"}},
                "threshold_amount": recharge.threshold_amount,
                "recharge_to_amount": recharge.recharge_to_amount,
            }
            try:
                target.edit_contract(
                    cut.metronome_customer_id,
                    cut.metronome_contract_id,
                    {"add_prepaid_balance_threshold_configuration": configuration},
                    uniqueness_key=metronome_uniqueness_key(
                        cut.config.migration_id, Step.METRONOME_AUTO_RECHARGE, stripe_id, revision=running.revision
                    ),
                    idempotency_key=step_key(cut.config, Step.METRONOME_AUTO_RECHARGE, stripe_id, running.revision),
                )
            except MetronomeAlreadyExists:
                added = False
            contract = target.contract(cut.metronome_customer_id, cut.metronome_contract_id)
        if not contract.auto_recharge_enabled:
            raise AutoRechargeDisabled(
                f"{stripe_id} contract {cut.metronome_contract_id}: auto-recharge is off (a gated payment failed?)"
            )
        return StepOutcome(
            "enabled" if added else "found",
            detail=f"recharge to {recharge.recharge_to_amount} below {recharge.threshold_amount} cents",
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_AUTO_RECHARGE), request.runner, body)
    return finish(request, Step.METRONOME_AUTO_RECHARGE, done)
