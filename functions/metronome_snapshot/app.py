"""Read the customer, its subscriptions and credit grants from Stripe once, and store the snapshot in S3."""

from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult, snapshot_customer
from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stripe_source
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_SNAPSHOT)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return snapshot_customer(request, import_storage(), stripe_source(), progress_store())
