"""Write the import's verification report (JSON and CSV) from the progress store."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from billmig.settings import import_storage, progress_store
from billmig.stigg.import_report import ReportRequest, write_import_report

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ReportRequest)
def lambda_handler(event: ReportRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(batch_id=event.import_id, step="stigg.report")
    report = write_import_report(event, progress_store(), import_storage())
    logger.info("import report written", extra={"totals": report.totals})
    return {
        "import_id": report.import_id,
        "totals": report.totals,
        "json_key": report.json_key,
        "csv_key": report.csv_key,
    }
