"""Write the parity run's report to S3: parity/<run id>/report.json, .csv and .html."""

from billmig.observability import step_handler
from billmig.parity.run import ParityReportRequest
from billmig.parity.run_report import ParityReportWritten, write_parity_report
from billmig.settings import import_storage, parity_ledger, progress_store
from billmig.steps import Step
from billmig.world_clock import world_now


@step_handler(ParityReportRequest, Step.PARITY_REPORT)
def lambda_handler(request: ParityReportRequest) -> ParityReportWritten:
    return write_parity_report(request, import_storage(), progress_store(), parity_ledger(), world_now)
