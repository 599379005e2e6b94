"""Roll one customer back to Stripe (until its first Metronome invoice is finalized), each change a recorded step."""

from billmig.metronome.rollback import RollbackRequest, RollbackResult, rollback_customer
from billmig.observability import step_handler
from billmig.settings import rollback_ports
from billmig.steps import Step


@step_handler(RollbackRequest, Step.METRONOME_ROLLBACK)
def lambda_handler(request: RollbackRequest) -> RollbackResult:
    return rollback_customer(request, rollback_ports())
