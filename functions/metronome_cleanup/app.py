"""Clean up a cut-over batch: router off Stripe (phase and flag), unused prices archived, unused meters deactivated."""

from billmig.metronome.cleanup import CleanupRequest, CleanupResult, clean_up
from billmig.observability import step_handler
from billmig.settings import feature_flags, import_storage, progress_store, stripe_source
from billmig.steps import Step
from billmig.world_clock import WorldClock


@step_handler(CleanupRequest, Step.METRONOME_CLEANUP)
def lambda_handler(request: CleanupRequest) -> CleanupResult:
    return clean_up(request, import_storage(), stripe_source(), progress_store(), feature_flags(), WorldClock())
