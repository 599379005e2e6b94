"""Cancel the Stripe subscription a provisioned paid plan replaces: at once, without proration."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store, stripe_subscriptions
from billmig.stigg.paid_plans import PaidStepRequest, cancel_stripe_subscription

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PaidStepRequest)
def lambda_handler(event: PaidStepRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stripe.cancel", customer_id=event.progress_key)
    result = cancel_stripe_subscription(event, import_storage(), stripe_subscriptions(), progress_store())
    metrics.add_metric(name="StripeSubscriptionsCancelled", unit=MetricUnit.Count, value=1)
    logger.info(
        "stripe subscription handled", extra={"outcome": result.outcome, "stripe_subscription": result.vendor_id}
    )
    return result.model_dump(mode="json")
