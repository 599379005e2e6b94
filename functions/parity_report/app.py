"""Write the parity run's results as JSON to S3 (`parity/<run id>/report.json`)."""

from billmig.observability import step_handler
from billmig.parity.run import ParityReportRequest, ParityReportResult, write_parity_report
from billmig.settings import import_storage, parity_ledger, progress_store
from billmig.steps import Step


@step_handler(ParityReportRequest, Step.PARITY_REPORT)
def lambda_handler(request: ParityReportRequest) -> ParityReportResult:
    return write_parity_report(request, import_storage(), progress_store(), parity_ledger())
