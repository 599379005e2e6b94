"""Decide the cutover at its instant: the parity gate releases the customer or holds it back."""

from billmig.metronome.cutover import CutoverDecision, decide_cutover
from billmig.metronome.snapshot import CustomerStepRequest
from billmig.observability import step_handler
from billmig.settings import import_storage, parity_ledger, progress_store
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CustomerStepRequest, Step.METRONOME_CUTOVER_GATE)
def lambda_handler(request: CustomerStepRequest) -> CutoverDecision:
    return decide_cutover(request, import_storage(), progress_store(), parity_ledger(), WorldClock())
