"""Record a failure that a state machine caught, so it is visible in the progress store and its status index."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import progress_store
from billmig.step_failures import FailureReport, record_failure

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FailureReport)
def lambda_handler(event: FailureReport, context: LambdaContext) -> dict[str, Any]:
    recorded = record_failure(event, progress_store())
    logger.append_keys(batch_id=event.batch_id, step=event.step, customer_id=recorded.customer_id)
    metrics.add_metric(name="StepFailures", unit=MetricUnit.Count, value=1)
    logger.warning("step failed", extra={"error_type": recorded.error_type, "error": recorded.error_message})
    return recorded.model_dump(mode="json")
