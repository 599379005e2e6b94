"""List the customers a parity run checks (the parallel run's, or one batch's) into S3 for the Map."""

from billmig.observability import step_handler
from billmig.parity.run import ParityCustomersResult, ParityRunRequest, parity_customers
from billmig.settings import import_storage, parity_concurrency, parity_customer_listing
from billmig.steps import Step


@step_handler(ParityRunRequest, Step.PARITY_CUSTOMERS)
def lambda_handler(request: ParityRunRequest) -> ParityCustomersResult:
    return parity_customers(request, parity_customer_listing(), import_storage(), max_concurrency=parity_concurrency())
