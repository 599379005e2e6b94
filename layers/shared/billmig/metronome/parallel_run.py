"""Step 4: the parallel run begins. The customer's phase becomes `parallel_run` (the usage router sends its events
to both vendors from then on); the execution then waits for the cutover in its `WaitForCutover` state."""

from __future__ import annotations

from billmig.metronome.contract import StepOrderViolated
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult, result_of
from billmig.progress import ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once

PARALLEL_RUN = "parallel_run"


def begin_parallel_run(request: CustomerStepRequest, store: ProgressStore) -> CustomerStepResult:
    stripe_id = request.stripe_customer_id
    progress = store.get(request.batch_id, stripe_id)
    contracted = progress.steps.get(Step.METRONOME_CONTRACT) if progress else None
    if contracted is None or contracted.status is not StepStatus.SUCCEEDED:
        raise StepOrderViolated(f"{stripe_id}: no reconciled Metronome contract yet")

    def body(_: RunningStep) -> StepOutcome:
        store.set_phase(request.batch_id, stripe_id, PARALLEL_RUN)
        return StepOutcome(PARALLEL_RUN)

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_PARALLEL_RUN), request.runner, body)
    return result_of(
        request, Step.METRONOME_PARALLEL_RUN, "already done" if done.already_done else done.outcome, done.vendor_ids
    )
