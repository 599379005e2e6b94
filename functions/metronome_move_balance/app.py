"""Threshold customer: move Stripe's remaining credit balance onto the contract."""

from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.threshold_cutover import move_balance
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store, stripe_source
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_MOVE_BALANCE)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return move_balance(request, import_storage(), stripe_source(), metronome_target(), progress_store())
