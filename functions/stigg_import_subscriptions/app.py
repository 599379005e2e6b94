"""Send one chunk of free and custom-plan subscriptions to Stigg's bulk import (applied in the background)."""

from billmig.observability import step_handler
from billmig.settings import chunk_progress, import_storage, stigg_target
from billmig.steps import Step
from billmig.stigg.bulk_import import ChunkRequest, SubscriptionChunkSent, import_subscription_chunk


@step_handler(ChunkRequest, Step.STIGG_SUBSCRIPTIONS)
def lambda_handler(request: ChunkRequest) -> SubscriptionChunkSent:
    return import_subscription_chunk(request, import_storage(), stigg_target(), chunk_progress())
