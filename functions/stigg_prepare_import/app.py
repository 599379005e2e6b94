"""Read an import's files, check every record and the import order, and write the chunks the later steps send."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, stigg_target
from billmig.stigg.import_preparation import ImportRequest, prepare_import

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ImportRequest)
def lambda_handler(event: ImportRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.prepare")
    prepared = prepare_import(event, import_storage(), stigg_target())
    for entity, count in prepared.counts.items():
        metrics.add_metric(name=f"StiggImport_{entity}", unit=MetricUnit.Count, value=count)
    logger.info("import prepared", extra={"counts": prepared.counts})
    return prepared.model_dump(mode="json")
