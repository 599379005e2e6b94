"""Summarise a batch from the progress store's state index."""

from billmig.batch_report import BatchReport, ReportRequest, report_batch
from billmig.observability import step_handler
from billmig.settings import progress_store
from billmig.steps import Step


@step_handler(ReportRequest, Step.BATCH_REPORT)
def lambda_handler(request: ReportRequest) -> BatchReport:
    return report_batch(request.batch_id, progress_store())
