"""Step 3, contract: the customer's contract on the rate card, its grants moved, then the credits reconciled.

The contract carries a `uniqueness_key` (decisions.md (d)) and is looked up before it is created, by the id an
earlier attempt recorded or by that key on the customer's contracts (any revision of it), so a crash after the
create never makes a second one (which is why its id is only noted, written with the step's outcome). Then every
moved grant is read back through Metronome's API: Stripe's remaining balance must equal the commit's or credit's
amount, with its priority and expiry.
"""

from __future__ import annotations

from datetime import datetime

from billmig.idempotency_keys import metronome_uniqueness_key
from billmig.metronome.contract_terms import (
    GrantMove,
    contract_terms,
    grant_moves,
    live_subscription,
    moved_at_cutover,
)
from billmig.metronome.customer import ACTION_PREFIX, actions_of
from billmig.metronome.errors import (
    CreditReconciliationFailed,
    ForeignContract,
    MetronomeAlreadyExists,
    MetronomeConflict,
)
from billmig.metronome.ports import MetronomeContract, MetronomeTarget
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult, read_snapshot, result_of
from billmig.metronome.storage import RunStorage, read_run
from billmig.progress import ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once

CONTRACT_ACTIONS = ("create_contract",)


class StepOrderViolated(MetronomeConflict):
    """A step ran before the step it needs succeeded."""


def contract_key(migration_id: str, stripe_customer_id: str, revision: int = 1) -> str:
    return metronome_uniqueness_key(migration_id, Step.METRONOME_CONTRACT, stripe_customer_id, revision=revision)


def ended_by(contract: MetronomeContract, instant: datetime) -> bool:
    return contract.ending_before is not None and contract.ending_before <= instant


def contract_object(
    existing: list[MetronomeContract], migration_id: str, stripe_customer_id: str, invoices_from: datetime
) -> str:
    """The contract key's object: the Stripe customer id, with a generation from the second migration on.

    A rolled-back customer's contract was ended by the rollback (`billmig.metronome.rollback`): a later migration
    gives it a new contract on its balances of that day (the old one's commits mirror balances Stripe has burnt
    since) rather than reusing it, and the old one, ended before the new invoices begin, is history, not foreign.
    """
    first_key = contract_key(migration_id, stripe_customer_id)
    ours = [
        c
        for c in existing
        if (c.uniqueness_key or "") == first_key or (c.uniqueness_key or "").startswith(f"{first_key}:")
    ]
    earlier = [c for c in ours if ended_by(c, invoices_from)]
    return stripe_customer_id if not earlier else f"{stripe_customer_id}:g{len(earlier) + 1}"


def find_contract(contracts: list[MetronomeContract], base_key: str) -> MetronomeContract | None:
    for contract in contracts:
        key = contract.uniqueness_key or ""
        if key == base_key or key.startswith(f"{base_key}:r"):
            return contract
    return None


def reconcile(contract: MetronomeContract, moves: list[GrantMove]) -> list[str]:
    """Every difference between the grants moved and the contract as Metronome returns it."""
    problems = []
    by_name = {b.name: b for b in contract.balances}
    for move in moves:
        if move.target is None:
            continue
        found = by_name.get(move.grant_id)
        want_kind = "PREPAID" if move.target == "commit" else "CREDIT"
        if found is None:
            problems.append(f"{move.grant_id}: no {want_kind} on contract {contract.id}")
            continue
        if found.kind != want_kind:
            problems.append(f"{move.grant_id}: is {found.kind}, expected {want_kind}")
        if found.amount != move.remaining:
            problems.append(f"{move.grant_id}: Metronome {found.amount} cents, Stripe remaining {move.remaining}")
        if found.priority is not None and float(found.priority) != float(move.priority):
            problems.append(f"{move.grant_id}: priority {found.priority}, expected {move.priority}")
        if move.ending_before and found.ending_before and found.ending_before != move.ending_before:
            problems.append(f"{move.grant_id}: ends {found.ending_before.isoformat()}, expected {move.ending_before}")
        if want_kind == "PREPAID" and found.invoiced:
            problems.append(f"{move.grant_id}: the commit would invoice a balance the customer already paid")
    return problems


def write_contract(
    request: CustomerStepRequest, storage: RunStorage, target: MetronomeTarget, store: ProgressStore
) -> CustomerStepResult:
    run = read_run(storage, request.run_key)
    config = run.config
    stripe_id = request.stripe_customer_id
    progress = store.get(request.batch_id, stripe_id)
    prepared = progress.steps.get(Step.METRONOME_PREPARE) if progress else None
    if prepared is None or prepared.status is not StepStatus.SUCCEEDED:
        raise StepOrderViolated(f"{stripe_id}: not prepared in Metronome yet")
    customer_id = prepared.vendor_ids["metronome_customer_id"]
    snapshot = read_snapshot(storage, request.batch_id, stripe_id)
    subscription = live_subscription(snapshot)
    moves = [] if moved_at_cutover(subscription) else grant_moves(snapshot, subscription, config)

    def body(running: RunningStep) -> StepOutcome:
        contract_id = running.vendor_ids.get("metronome_contract_id")
        existing = target.contracts(customer_id) if contract_id is None else []
        obj = contract_object(existing, config.migration_id, stripe_id, config.parallel_run_start)
        base_key = contract_key(config.migration_id, obj)
        if contract_id is None:
            live = [c for c in existing if not ended_by(c, config.parallel_run_start)]
            contract_id = getattr(find_contract(live, base_key), "id", None)
            if contract_id is None and live:
                ids = ", ".join(c.id for c in live)
                raise ForeignContract(f"{stripe_id}: Metronome customer {customer_id} already has contracts {ids}")
        if contract_id is None:
            terms = contract_terms(
                snapshot,
                config,
                customer_id=customer_id,
                billing_provider_configuration_id=prepared.vendor_ids["billing_provider_configuration_id"],
                uniqueness_key=contract_key(config.migration_id, obj, running.revision),
            )
            try:
                contract_id = target.create_contract(terms)
            except MetronomeAlreadyExists as exc:
                found = find_contract(target.contracts(customer_id), base_key)
                if found is None:
                    raise MetronomeConflict(f"{stripe_id}: contract key {base_key} used, no contract has it") from exc
                contract_id = found.id
            else:
                running.note({"metronome_contract_id": contract_id, f"{ACTION_PREFIX}create_contract": contract_id})
        if running.vendor_ids.get("metronome_contract_id") != contract_id:
            running.note({"metronome_contract_id": contract_id})
        problems = reconcile(target.contract(customer_id, contract_id), moves)
        if problems:
            raise CreditReconciliationFailed(f"{stripe_id} contract {contract_id}: " + "; ".join(problems))
        moved = [m for m in moves if m.target]
        made = f"{ACTION_PREFIX}create_contract" in running.vendor_ids
        detail = ",".join(actions_of(running.vendor_ids, CONTRACT_ACTIONS))
        detail += f";reconciled {len(moved)} grants, {sum(m.remaining for m in moved)} cents"
        return StepOutcome("created" if made else "found", detail=detail)

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_CONTRACT), request.runner, body)
    return result_of(
        request, Step.METRONOME_CONTRACT, "already done" if done.already_done else done.outcome, done.vendor_ids
    )
