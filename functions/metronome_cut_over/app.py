"""Switch the router's phase to cut_over at the boundary: Metronome only from it."""

from billmig.metronome.cutover import switch_phase
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_CUT_OVER)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return switch_phase(request, import_storage(), progress_store())
