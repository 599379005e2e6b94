"""Make the customer billable in Metronome from the cutover boundary."""

from billmig.metronome.cutover import set_billable_at_boundary
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_BILLABLE)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return set_billable_at_boundary(request, import_storage(), metronome_target(), progress_store())
