"""Threshold customer: enable auto-recharge with the Stripe payment gate, at the boundary."""

from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.threshold_cutover import enable_auto_recharge
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CustomerStepRequest, Step.METRONOME_AUTO_RECHARGE)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return enable_auto_recharge(request, import_storage(), metronome_target(), progress_store(), WorldClock())
