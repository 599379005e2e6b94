"""Step 5: the parallel run's usage backfill. Until the parallel-run step wrote the customer's phase, the router sent
its events to Stripe only; those timed from the parallel-run start (`dual_write_from`) on belong in Metronome too.
They are re-sent from the usage journal (`billmig.usage.resend`), with the router's ids, so Metronome counts each
once however often this step runs.

A router whose route cache still held the old phase (at most `route_cache_seconds` after the phase was written) may
journal a Stripe-only event after this step ran; the completeness check reports it, and `billmig usage resend --to
metronome` (the same function, idempotent) sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from billmig.metronome.contract import StepOrderViolated
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult, result_of
from billmig.progress import ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.usage.resend import ResendResult
from billmig.usage.routing import Destination

Resend = Callable[[str, Destination, datetime | None, datetime | None], ResendResult]
BACKFILLED = "backfilled"
WITH_ERRORS = "completed with errors"


def backfill_usage(request: CustomerStepRequest, store: ProgressStore, resend: Resend) -> CustomerStepResult:
    stripe_id = request.stripe_customer_id
    progress = store.get(request.batch_id, stripe_id)
    began = progress.steps.get(Step.METRONOME_PARALLEL_RUN) if progress else None
    if progress is None or began is None or began.status is not StepStatus.SUCCEEDED or not progress.ingest_alias:
        raise StepOrderViolated(f"{stripe_id}: the parallel run has not begun")
    alias, since, until = progress.ingest_alias, progress.dual_write_from, progress.cutover_at

    def body(_: RunningStep) -> StepOutcome:
        result = resend(alias, Destination.METRONOME, since, until)
        failed = bool(result.refused) or bool(result.refused_before)
        return StepOutcome(WITH_ERRORS if failed else BACKFILLED, detail=result.outcome)

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_BACKFILL_USAGE), request.runner, body)
    return result_of(
        request, Step.METRONOME_BACKFILL_USAGE, "already done" if done.already_done else done.outcome, done.vendor_ids
    )
