"""End the Stripe subscription at its period end (the cutover boundary)."""

from billmig.metronome.cutover import end_stripe_at_period_end
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stripe_source
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_STRIPE_PERIOD_END)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return end_stripe_at_period_end(request, import_storage(), stripe_source(), progress_store())
