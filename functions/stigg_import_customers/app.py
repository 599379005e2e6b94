"""Import one chunk of customers into Stigg (an upsert), resuming from what the chunk's progress says is done."""

from billmig.observability import step_handler
from billmig.settings import chunk_progress, import_storage, stigg_target
from billmig.steps import Step
from billmig.stigg.bulk_import import ChunkRequest, ChunkSummary, import_customer_chunk


@step_handler(ChunkRequest, Step.STIGG_CUSTOMERS)
def lambda_handler(request: ChunkRequest) -> ChunkSummary:
    return import_customer_chunk(request, import_storage(), stigg_target(), chunk_progress())
