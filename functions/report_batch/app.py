"""Summarise a batch from the progress store's state index."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import BaseModel, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.batch_report import report_batch
from billmig.settings import progress_store

logger = Logger()
tracer = Tracer()


class ReportRequest(BaseModel):
    batch_id: str


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ReportRequest)
def lambda_handler(event: ReportRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.batch_id, step="report")
    report = report_batch(event.batch_id, progress_store())
    logger.info("batch report", extra={"counts": report.counts})
    return report.model_dump(mode="json")
