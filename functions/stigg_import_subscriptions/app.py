"""Send one chunk of free and custom-plan subscriptions to Stigg's bulk import (applied in the background)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.stigg.bulk_import import ChunkRequest, import_subscription_chunk

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ChunkRequest)
def lambda_handler(event: ChunkRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.subscriptions", chunk=event.chunk_key)
    sent = import_subscription_chunk(event, import_storage(), stigg_target(), progress_store())
    metrics.add_metric(name="StiggSubscriptionsSent", unit=MetricUnit.Count, value=sent.records)
    logger.info("subscriptions chunk sent", extra={"task_id": sent.task_id, "existed": len(sent.existed_before)})
    return sent.model_dump(mode="json")
