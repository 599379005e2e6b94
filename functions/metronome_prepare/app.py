"""Find the Metronome customer by ingest alias or create it, with its Stripe configuration; set it unbillable."""

from billmig.metronome.customer import prepare_customer
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_PREPARE)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return prepare_customer(request, import_storage(), metronome_target(), progress_store())
