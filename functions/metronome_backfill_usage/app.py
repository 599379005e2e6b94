"""Backfill the parallel run: events Stripe got alone before the phase was written, sent to Metronome too."""

from billmig.metronome.backfill_usage import backfill_usage
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import progress_store, resend_usage
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_BACKFILL_USAGE)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return backfill_usage(request, progress_store(), resend_usage)
