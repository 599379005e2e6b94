"""After the first Metronome cycle: every moved balance = Stripe's remainder minus Metronome's drawdown."""

from billmig.metronome.credit_check import check_credits
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store, stripe_source
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CustomerStepRequest, Step.METRONOME_CREDIT_CHECK)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return check_credits(request, import_storage(), stripe_source(), metronome_target(), progress_store(), WorldClock())
