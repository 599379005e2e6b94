"""Provision one paid plan in Stigg, backdated to its Stripe start; a lookup first, so it never provisions twice."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.stigg.paid_plans import PaidStepRequest, provision_paid_subscription

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PaidStepRequest)
def lambda_handler(event: PaidStepRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.provision", customer_id=event.progress_key)
    result = provision_paid_subscription(event, import_storage(), stigg_target(), progress_store())
    metrics.add_metric(name="StiggPaidProvisioned", unit=MetricUnit.Count, value=1)
    logger.info("paid plan provisioned", extra={"outcome": result.outcome, "stigg_subscription": result.vendor_id})
    return result.model_dump(mode="json")
