"""Preflight one customer of a batch: validate its record and enrol it in the progress store."""

from billmig.observability import step_handler
from billmig.preflight import PreflightRequest, PreflightResult, run_preflight
from billmig.settings import progress_store
from billmig.steps import Step


@step_handler(PreflightRequest, Step.PREFLIGHT)
def lambda_handler(request: PreflightRequest) -> PreflightResult:
    return run_preflight(request, progress_store())
