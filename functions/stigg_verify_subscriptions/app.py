"""Read a chunk of imported subscriptions back from Stigg; raises StiggImportPending until Stigg has applied it."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.stigg.bulk_import import SubscriptionChunkSent, verify_subscription_chunk

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=SubscriptionChunkSent)
def lambda_handler(event: SubscriptionChunkSent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.verify", chunk=event.chunk_key)
    summary = verify_subscription_chunk(event, import_storage(), stigg_target(), progress_store())
    logger.info("subscriptions chunk verified", extra={"outcomes": summary.outcomes})
    return summary.model_dump(mode="json")
