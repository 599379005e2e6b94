"""Powertools batch processing for the router: one router pass over the whole SQS batch, partial failures reported.

Powertools' `BatchProcessor` calls a handler per record; the vendors want 100 events per call, so this processor
hands the handler every record at once and then reports each record's fate through Powertools' own success and
failure handlers. Its response lists the records to deliver again (`batchItemFailures`, with the event source
mapping's `ReportBatchItemFailures`); the others are deleted, dead-lettered ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from billmig.observability import logger, metrics
from billmig.usage.router import QueuedEvent, RouterResult, UsageRouter


class DeliverAgain(Exception):
    """This record was not delivered yet (a throttle or an outage): SQS delivers it again."""


class WholeBatchProcessor(BatchProcessor):
    def __init__(self) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.last_result: RouterResult | None = None

    def process(self) -> list[tuple[Any, ...]]:
        records = [SQSRecord(record) for record in self.records]
        result: RouterResult = self.handler(records)
        self.last_result = result
        entries: list[tuple[Any, ...]] = []
        for raw, record in zip(self.records, records, strict=True):
            if record.message_id in result.retry:
                error = DeliverAgain(record.message_id)
                entries.append(self.failure_handler(record, (DeliverAgain, error, None)))
            else:
                entries.append(self.success_handler(raw, None))
        return entries


def usage_batch_handler(router: Callable[[], UsageRouter]) -> Callable[[dict[str, Any], LambdaContext], Any]:
    """The Lambda handler: the batch through `router()`, counts as metrics, refusals logged with their reasons."""
    processor = WholeBatchProcessor()

    def route(records: list[SQSRecord]) -> RouterResult:
        return router().route([QueuedEvent(r.message_id, r.body) for r in records])

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        metrics.add_dimension(name="step", value="usage_router")
        response = process_partial_response(event=event, record_handler=route, processor=processor, context=context)
        result = processor.last_result or RouterResult()
        for vendor, n in result.sent.items():
            metrics.add_metric(name=f"EventsSent_{vendor}", unit=MetricUnit.Count, value=n)
        metrics.add_metric(name="EventsDeadLettered", unit=MetricUnit.Count, value=len(result.dead_lettered))
        metrics.add_metric(name="EventsRetried", unit=MetricUnit.Count, value=len(result.retry))
        for letter in result.dead_lettered:
            logger.warning("usage event dead-lettered", extra={"message_id": letter.message_id, "why": letter.reason})
        logger.info("usage batch routed", extra={"sent": dict(result.sent), "retry": len(result.retry)})
        return response

    setattr(handler, "event_model", SqsModel)  # noqa: B010 - what `sam local invoke -e` events are checked against
    return handler
