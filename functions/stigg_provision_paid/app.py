"""Provision one paid plan in Stigg, backdated to its Stripe start; a lookup first, so it never provisions twice."""

from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.steps import Step
from billmig.stigg.paid_plans import PaidStepRequest, PaidStepResult, provision_paid_subscription


@step_handler(PaidStepRequest, Step.STIGG_PROVISION)
def lambda_handler(request: PaidStepRequest) -> PaidStepResult:
    return provision_paid_subscription(request, import_storage(), stigg_target(), progress_store())
