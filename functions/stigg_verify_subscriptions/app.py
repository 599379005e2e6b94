"""Read a chunk's subscription import task back from Stigg; raises StiggImportPending until Stigg has run it."""

from billmig.observability import step_handler
from billmig.settings import chunk_progress, import_storage, stigg_target
from billmig.steps import Step
from billmig.stigg.bulk_import import ChunkSummary, SubscriptionChunkSent, verify_subscription_chunk


@step_handler(SubscriptionChunkSent, Step.STIGG_VERIFY)
def lambda_handler(request: SubscriptionChunkSent) -> ChunkSummary:
    return verify_subscription_chunk(request, import_storage(), stigg_target(), chunk_progress())
