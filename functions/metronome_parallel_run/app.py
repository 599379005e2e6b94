"""Begin the customer's parallel run: its phase in the progress store becomes `parallel_run`."""

from billmig.metronome.parallel_run import begin_parallel_run
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.observability import step_handler
from billmig.settings import import_storage, progress_store
from billmig.steps import Step


@step_handler(CustomerStepRequest, Step.METRONOME_PARALLEL_RUN)
def lambda_handler(request: CustomerStepRequest) -> CustomerStepResult:
    return begin_parallel_run(request, import_storage(), progress_store())
