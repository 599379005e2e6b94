"""Create the customer's Metronome contract with its Stripe grants moved, then reconcile every credit."""

from billmig.metronome.contract import write_contract
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_CONTRACT)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return write_contract(request, import_storage(), metronome_target(), progress_store())
