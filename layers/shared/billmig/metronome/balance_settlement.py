"""The moved balances settled to what Stripe left, once both last periods before the boundary are final.

A grant moved at contract creation holds its remaining balance *then*; Stripe goes on drawing it until the boundary:
for the period in flight when the parallel run began (its days before the dual write never reached Metronome), on a
hard cutover for every period up to the boundary, and for any event only Stripe billed. Metronome's parallel-run
invoices are unbillable shadows that drew their own amounts. At the boundary the customer must hold in Metronome
exactly what Stripe left, to the cent, so each moved commit or credit is set to

    amount = what Stripe left of the grant + what Metronome's invoices before the boundary drew from it,

which makes its balance at the boundary Stripe's remainder. It runs when Stripe's final invoice and Metronome's last
unbillable invoice are final (neither moves again); a change it would make once Metronome's first billable invoice is
final is refused (that invoice already drew from the old amount: an operator settles it). Setting an absolute amount
is idempotent by itself; the edit is keyed as well.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from billmig.idempotency_keys import metronome_uniqueness_key
from billmig.metronome.cutover import finish, not_before, released, step_key
from billmig.metronome.errors import (
    BalanceSettlementTooLate,
    CreditReconciliationFailed,
    CutoverMismatch,
    FinalInvoicePending,
    MetronomeAlreadyExists,
)
from billmig.metronome.ports import ContractBalance, MetronomeInvoice, MetronomeTarget
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.storage import RunStorage
from billmig.progress import ProgressStore
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stripe_source.port import StripeSource
from billmig.stripe_source.views import StripeCreditGrant
from billmig.world_clock import Clock

USAGE = "USAGE"
VOID = "VOID"
DRAFT = "DRAFT"
STRIPE_DRAFT = "draft"


def left_in_stripe(grant: StripeCreditGrant, boundary: datetime) -> int:
    """What the customer still has of a grant at the boundary: nothing once it is voided or expired."""
    at = int(boundary.timestamp())
    if grant.voided_at is not None or (grant.expires_at is not None and grant.expires_at <= at):
        return 0
    return max(grant.remaining, 0)


def drawn(invoices: list[MetronomeInvoice], boundary: datetime, *, before: bool) -> dict[str, int]:
    """Cents each commit or credit paid on Metronome's invoices of the periods before the boundary, or from it on."""
    totals: dict[str, int] = {}
    for invoice in invoices:
        if invoice.status == VOID or invoice.start is None or (invoice.start < boundary) != before:
            continue
        for source, cents in invoice.drawn.items():
            totals[source] = totals.get(source, 0) + cents
    return totals


def _update(balance: ContractBalance, amount: int) -> dict[str, Any]:
    if len(balance.access_item_ids) != 1:
        count = len(balance.access_item_ids)
        raise CutoverMismatch(f"{balance.name}: {count} access schedule items, a moved grant has 1")
    id_key = "credit_id" if balance.kind == "CREDIT" else "commit_id"
    return {
        id_key: balance.id,
        "access_schedule": {"update_schedule_items": [{"id": balance.access_item_ids[0], "amount": amount}]},
    }


def settle_balances(
    request: CustomerStepRequest,
    storage: RunStorage,
    stripe: StripeSource,
    target: MetronomeTarget,
    store: ProgressStore,
    clock: Clock,
) -> CustomerStepResult:
    cut = released(request, storage, store)
    stripe_id, sub_id = request.stripe_customer_id, cut.subscription.id
    not_before(cut.settle_at, clock, f"{stripe_id}: settling the moved balances (both last periods final)")

    def body(running: RunningStep) -> StepOutcome:
        pending = [i.id for i in stripe.invoices(sub_id) if i.status == STRIPE_DRAFT]
        if pending:
            raise FinalInvoicePending(f"{stripe_id}: Stripe invoice {pending[0]} of {sub_id} is still a draft")
        invoices = target.invoices(cut.metronome_customer_id)
        billed: list[MetronomeInvoice] = []  # Metronome's final invoices from the boundary on
        for invoice in invoices:
            if invoice.type != USAGE or invoice.start is None or invoice.status == VOID:
                continue
            if invoice.start < cut.boundary and invoice.status == DRAFT:
                raise FinalInvoicePending(f"{stripe_id}: Metronome invoice {invoice.id} before the boundary is a draft")
            if invoice.start >= cut.boundary and invoice.status != DRAFT:
                billed.append(invoice)
        grants = {g.id: g for g in stripe.credit_grants(stripe_id)}
        shadow = drawn(invoices, cut.boundary, before=True)
        contract = target.contract(cut.metronome_customer_id, cut.metronome_contract_id)
        wanted: dict[str, int] = {}
        lines: list[str] = []
        updates: dict[str, list[dict[str, Any]]] = {"update_commits": [], "update_credits": []}
        moved: dict[str, str] = {}
        for balance in contract.balances:
            grant = grants.get(balance.name or "")
            if grant is None:
                continue  # not a moved grant (an auto-recharge commit)
            left = left_in_stripe(grant, cut.boundary)
            amount = left + shadow.get(balance.id, 0)
            wanted[balance.id] = amount
            # as moved: remembered before the edit, so a rerun after a crash still reports the change it made
            was = int(running.vendor_ids.get(f"moved:{balance.id}", balance.amount))
            if was != amount:
                lines.append(f"{grant.id} {was} -> {amount} (Stripe left {left})")
            if amount != balance.amount:
                key = "update_credits" if balance.kind == "CREDIT" else "update_commits"
                updates[key].append(_update(balance, amount))
                moved[f"moved:{balance.id}"] = str(balance.amount)
        edit = {k: v for k, v in updates.items() if v}
        if edit and billed:
            raise BalanceSettlementTooLate(
                f"{stripe_id}: Metronome invoice {billed[0].id} from the boundary is {billed[0].status}: it drew from "
                f"the balances as moved; settle them by hand: {'; '.join(lines)}"
            )
        if edit:
            running.remember(moved)
            with contextlib.suppress(MetronomeAlreadyExists):  # an earlier attempt's edit: read back below
                target.edit_contract(
                    cut.metronome_customer_id,
                    cut.metronome_contract_id,
                    edit,
                    uniqueness_key=metronome_uniqueness_key(
                        cut.config.migration_id, Step.METRONOME_SETTLE_BALANCES, stripe_id, revision=running.revision
                    ),
                    idempotency_key=step_key(cut.config, Step.METRONOME_SETTLE_BALANCES, stripe_id, running.revision),
                )
            after = target.contract(cut.metronome_customer_id, cut.metronome_contract_id)
            found = {b.id: b.amount for b in after.balances}
            problems = [f"{b}: {found.get(b)} cents, expected {a}" for b, a in wanted.items() if found.get(b) != a]
            if problems:
                raise CreditReconciliationFailed(f"{stripe_id} contract {after.id}: " + "; ".join(problems))
        return StepOutcome(
            "settled" if lines else "as moved",
            detail="; ".join(lines) or f"{len(wanted)} moved balances already what Stripe left",
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_SETTLE_BALANCES), request.runner, body)
    return finish(request, Step.METRONOME_SETTLE_BALANCES, done)
