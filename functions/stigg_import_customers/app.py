"""Import one chunk of customers into Stigg (an upsert) and read each one back."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.stigg.bulk_import import ChunkRequest, import_customer_chunk

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ChunkRequest)
def lambda_handler(event: ChunkRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.customers", chunk=event.chunk_key)
    summary = import_customer_chunk(event, import_storage(), stigg_target(), progress_store())
    metrics.add_metric(name="StiggCustomersImported", unit=MetricUnit.Count, value=summary.records)
    logger.info("customers chunk imported", extra={"outcomes": summary.outcomes})
    return summary.model_dump(mode="json")
