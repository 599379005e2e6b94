"""Report one chunk of usage to Stigg with SET and an idempotency key, so a repeat changes nothing."""

from billmig.observability import step_handler
from billmig.settings import chunk_progress, import_storage, stigg_target
from billmig.steps import Step
from billmig.stigg.bulk_import import ChunkRequest, ChunkSummary, report_usage_chunk


@step_handler(ChunkRequest, Step.STIGG_USAGE)
def lambda_handler(request: ChunkRequest) -> ChunkSummary:
    return report_usage_chunk(request, import_storage(), stigg_target(), chunk_progress())
