"""Write the import's verification report (JSON and CSV) from the progress store."""

from billmig.observability import step_handler
from billmig.settings import chunk_progress, import_storage, progress_store
from billmig.steps import Step
from billmig.stigg.import_report import ReportRequest, ReportWritten, write_import_report


@step_handler(ReportRequest, Step.STIGG_REPORT)
def lambda_handler(request: ReportRequest) -> ReportWritten:
    return write_import_report(request, progress_store(), chunk_progress(), import_storage())
