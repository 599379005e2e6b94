"""Step 2, prepare: the Metronome customer, found by ingest alias or created, with its Stripe billing provider
configuration, and unbillable for the parallel run.

Every write is found again at Metronome before it is made, so a crash after any of them resumes without repeating
it: the customer is looked up by alias before it is created (Metronome refuses a second customer with the alias
anyway), the configurations are read before one is added (Metronome refuses an identical second), and the billable
status is read before it is set. The ids are therefore only noted (`running.note`), written with the step's outcome,
not one write each.
"""

from __future__ import annotations

from billmig.idempotency_keys import idempotency_key
from billmig.metronome.contract_terms import contract_start, live_subscription
from billmig.metronome.errors import CustomerMismatch, MetronomeAlreadyExists, MetronomeConflict
from billmig.metronome.ports import MetronomeCustomer, MetronomeTarget
from billmig.metronome.snapshot import (
    CustomerSnapshot,
    CustomerStepRequest,
    CustomerStepResult,
    read_snapshot,
    result_of,
)
from billmig.metronome.storage import RunStorage, read_run
from billmig.progress import ProgressStore
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once

UNBILLABLE = "unbillable"
INGEST_ALIAS = "ingest_alias"
ACTION_PREFIX = "action."
PREPARE_ACTIONS = ("create_customer", "add_billing_provider_configuration", "set_unbillable")


def actions_of(vendor_ids: dict[str, str], order: tuple[str, ...]) -> list[str]:
    """The writes a step made, across all its attempts, in the order the step makes them."""
    return [a for a in order if f"{ACTION_PREFIX}{a}" in vendor_ids]


def display_name(snapshot: CustomerSnapshot) -> str:
    customer = snapshot.customer
    return customer.name or customer.email or customer.id


def prepare_customer(
    request: CustomerStepRequest, storage: RunStorage, target: MetronomeTarget, store: ProgressStore
) -> CustomerStepResult:
    run = read_run(storage, request.run_key)
    snapshot = read_snapshot(storage, request.batch_id, request.stripe_customer_id)
    config = run.config
    alias = snapshot.customer.metadata[config.internal_id_metadata_key].strip()
    stripe_id = snapshot.customer.id

    def key(write: str, revision: int) -> str:
        return idempotency_key(config.migration_id, Step.METRONOME_PREPARE, f"{stripe_id}:{write}", revision=revision)

    def body(running: RunningStep) -> StepOutcome:
        known = running.vendor_ids.get("metronome_customer_id")
        customer: MetronomeCustomer | None = target.customer(known) if known else target.customer_by_alias(alias)
        if customer is None:
            try:
                customer = target.create_customer(
                    name=display_name(snapshot),
                    alias=alias,
                    stripe_customer_id=stripe_id,
                    idempotency_key=key("customer", running.revision),
                )
            except MetronomeAlreadyExists as exc:  # made since the lookup (another runner, or a lost reply)
                customer = target.customer_by_alias(alias)
                if customer is None:
                    raise MetronomeConflict(f"{stripe_id}: alias {alias!r} is taken but no customer has it") from exc
            else:
                running.note({"metronome_customer_id": customer.id, f"{ACTION_PREFIX}create_customer": customer.id})
        if running.vendor_ids.get("metronome_customer_id") != customer.id:
            running.note({"metronome_customer_id": customer.id})

        stripe_configs = [
            c for c in target.billing_configurations(customer.id) if c.billing_provider == "stripe" and not c.archived
        ]
        ours = [c for c in stripe_configs if c.stripe_customer_id == stripe_id]
        if stripe_configs and not ours:
            others = ", ".join(str(c.stripe_customer_id) for c in stripe_configs)
            raise CustomerMismatch(f"{stripe_id}: Metronome customer {customer.id} ({alias}) bills Stripe {others}")
        if ours:
            configuration_id = ours[0].id
        else:
            configuration_id = target.add_stripe_configuration(
                customer.id, stripe_id, key("billing-provider", running.revision)
            )
            running.note(
                {
                    "billing_provider_configuration_id": configuration_id,
                    f"{ACTION_PREFIX}add_billing_provider_configuration": configuration_id,
                }
            )
        if running.vendor_ids.get("billing_provider_configuration_id") != configuration_id:
            running.note({"billing_provider_configuration_id": configuration_id})

        status = target.customer(customer.id).billable_status
        if status != UNBILLABLE:
            effective = contract_start(live_subscription(snapshot))
            target.set_billable_status(customer.id, UNBILLABLE, effective, key("unbillable", running.revision))
            running.note({f"{ACTION_PREFIX}set_unbillable": customer.id})
        made = f"{ACTION_PREFIX}create_customer" in running.vendor_ids
        return StepOutcome(
            "created" if made else "found",
            {INGEST_ALIAS: alias},  # how Metronome knows the customer: what the parallel run routes its usage by
            detail=",".join(actions_of(running.vendor_ids, PREPARE_ACTIONS)),
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_PREPARE), request.runner, body)
    return result_of(
        request, Step.METRONOME_PREPARE, "already done" if done.already_done else done.outcome, done.vendor_ids
    )
