"""Step 4: the parallel run begins. The customer's phase becomes `parallel_run`, written with its ingest alias and the
parallel-run start: the usage router finds the customer by the alias its events carry and sends each event to both
vendors. The config's `cutover_at` is only the planned instant: the routing instant (Metronome only from it) is
written by the cutover step once the customer is really cut over (`billmig.metronome.cutover`), so a customer held
back or never cut over keeps dual-writing. The execution then waits for the cutover in its `WaitForCutover` state."""

from __future__ import annotations

from billmig.metronome.contract import StepOrderViolated
from billmig.metronome.customer import INGEST_ALIAS
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult, read_snapshot, result_of
from billmig.metronome.storage import RunStorage, read_run
from billmig.progress import PhaseChange, ProgressStore, StepStatus
from billmig.steps import Step, StepKey, settle_once

PARALLEL_RUN = "parallel_run"


def begin_parallel_run(request: CustomerStepRequest, storage: RunStorage, store: ProgressStore) -> CustomerStepResult:
    stripe_id = request.stripe_customer_id
    progress = store.get(request.batch_id, stripe_id)
    contracted = progress.steps.get(Step.METRONOME_CONTRACT) if progress else None
    if contracted is None or contracted.status is not StepStatus.SUCCEEDED:
        raise StepOrderViolated(f"{stripe_id}: no reconciled Metronome contract yet")

    config = read_run(storage, request.run_key).config
    prepared = progress.steps.get(Step.METRONOME_PREPARE) if progress else None
    alias = prepared.vendor_ids.get(INGEST_ALIAS) if prepared else None
    if alias is None:  # prepared before the step recorded the alias
        alias = read_snapshot(storage, request.batch_id, stripe_id).customer.metadata[config.internal_id_metadata_key]

    # The phase is written with the step's claim and success, in one write: never a phase without its step, or the
    # reverse, and no vendor write for a lease to guard
    routing = PhaseChange(
        PARALLEL_RUN, ingest_alias=alias.strip(), dual_write_from=config.parallel_run_start, clear_cutover_at=True
    )
    key = StepKey(request.batch_id, stripe_id, Step.METRONOME_PARALLEL_RUN)
    done = settle_once(store, key, request.runner, PARALLEL_RUN, routing)
    return result_of(
        request, Step.METRONOME_PARALLEL_RUN, "already done" if done.already_done else done.outcome, done.vendor_ids
    )
