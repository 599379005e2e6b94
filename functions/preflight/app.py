"""Preflight one customer of a batch: validate its record and enrol it in the progress store."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.preflight import STEP, PreflightRequest, run_preflight
from billmig.settings import progress_store

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PreflightRequest)
def lambda_handler(event: PreflightRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.batch_id, step=STEP, customer_id=event.customer.get("stripe_customer_id"))
    result = run_preflight(event, progress_store())
    metrics.add_metric(name="CustomersPreflighted", unit=MetricUnit.Count, value=1)
    logger.info("preflight finished", extra={"status": result.status, "attempt": result.attempt})
    return result.model_dump(mode="json")
