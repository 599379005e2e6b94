"""Threshold customer: end the Stripe subscription now and wait for its final invoice."""

from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.threshold_cutover import end_stripe_now
from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stripe_source
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CustomerStepRequest, Step.METRONOME_STRIPE_END_NOW)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return end_stripe_now(request, import_storage(), stripe_source(), progress_store(), WorldClock())
