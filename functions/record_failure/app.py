"""Record a failure that a state machine caught, so it is visible in the progress store and its status index."""

from billmig.observability import step_handler
from billmig.settings import progress_store
from billmig.step_failures import FailureReport, RecordedFailure, record_failure
from billmig.steps import Step


@step_handler(FailureReport, Step.RECORD_FAILURE)
def lambda_handler(request: FailureReport) -> RecordedFailure:
    return record_failure(request, progress_store())
