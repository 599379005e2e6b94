"""Compare one customer's Stripe and Metronome invoices per billing period; record each period in the ledger."""

from billmig.observability import step_handler
from billmig.parity.run import CheckParityRequest, CheckParityResult, check_parity
from billmig.settings import (
    import_storage,
    metronome_target,
    parity_ledger,
    parity_stripe_reads,
    progress_store,
    usage_router_config,
    usage_totals,
)
from billmig.steps import Step
from billmig.world_clock import world_now


@step_handler(CheckParityRequest, Step.PARITY_CHECK)
def lambda_handler(request: CheckParityRequest) -> CheckParityResult:
    return check_parity(request, import_storage(), progress_store(), parity_ledger(), parity_stripe_reads(),
                        metronome_target(), usage_totals(), usage_router_config(), world_now)  # fmt: skip
