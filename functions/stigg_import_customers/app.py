"""Import one chunk of customers into Stigg (an upsert) and read each one back."""

from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store, stigg_target
from billmig.steps import Step
from billmig.stigg.bulk_import import ChunkRequest, ChunkSummary, import_customer_chunk


@step_handler(ChunkRequest, Step.STIGG_CUSTOMERS)
def lambda_handler(request: ChunkRequest) -> ChunkSummary:
    return import_customer_chunk(request, import_storage(), stigg_target(), progress_store())
