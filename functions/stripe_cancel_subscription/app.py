"""Cancel the Stripe subscription a provisioned paid plan replaces: at once, without proration."""

from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stripe_source
from billmig.steps import Step
from billmig.stigg.paid_plans import PaidStepRequest, PaidStepResult, cancel_stripe_subscription


@step_handler(PaidStepRequest, Step.STRIPE_CANCEL)
def lambda_handler(request: PaidStepRequest) -> PaidStepResult:
    return cancel_stripe_subscription(request, import_storage(), stripe_source(), progress_store())
