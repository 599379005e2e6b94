"""Once both last periods before the boundary are final: each moved balance set to what Stripe left of its grant."""

from billmig.metronome.balance_settlement import settle_balances
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, metronome_target, progress_store, stripe_source
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CustomerStepRequest, Step.METRONOME_SETTLE_BALANCES)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return settle_balances(
        request, import_storage(), stripe_source(), metronome_target(), progress_store(), WorldClock()
    )
