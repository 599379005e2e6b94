"""The month-boundary cutover: decided before the customer's own period boundary, effective at it.

The config's `cutover_at` is the planned boundary; each customer's boundary is the first end of one of its Stripe
billing periods at or after it (its anniversary, if it bills on one). The decision comes `cutover_lead_hours` before
that boundary, while the period is still open, because Stripe's `cancel_at_period_end` (or a schedule ending in
`cancel`) must be set before the period ends. At the decision the parity gate (`billmig.parity.ledger`) releases or
holds back the customer; a hard cutover has no gate. Released: Stripe ends the subscription at the boundary (its
last cycle invoice covers its last period), Metronome bills from the boundary (`billable`, effective then), and the
router's phase becomes `cut_over` with `cutover_at` = the boundary, so every event timed from it goes to Metronome
only. Held back: phase `held_back` with the gate's reason and no `cutover_at`, so the router keeps dual-writing.
Threshold-billing customers take `billmig.metronome.threshold_cutover`'s steps at the boundary instead of the
Stripe end at period end.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel

from billmig.idempotency_keys import idempotency_key
from billmig.metronome.contract import StepOrderViolated
from billmig.metronome.contract_terms import live_subscription, moved_at_cutover, rfc3339
from billmig.metronome.errors import CutoverMismatch, CutoverTooEarly
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.resolution import ResolvedConfig
from billmig.metronome.snapshot import (
    CustomerSnapshot,
    CustomerStepRequest,
    CustomerStepResult,
    read_snapshot,
    result_of,
)
from billmig.metronome.storage import RunStorage, read_run
from billmig.parity.ledger import ParityLedger, cutover_verdict
from billmig.progress import PhaseChange, ProgressStore, StepStatus
from billmig.steps import RunningStep, Step, StepDone, StepKey, StepOutcome, run_once, settle_once
from billmig.stripe_source.port import StripeSource
from billmig.stripe_source.views import StripeSubscription
from billmig.usage.routing import CUT_OVER, HELD_BACK, ROLLED_BACK
from billmig.world_clock import Clock

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})  # nothing left to end at its period end

CutoverPath = Literal["period_end", "threshold"]
PERIOD_END: Final = "period_end"  # Stripe ends the subscription at its period end
THRESHOLD: Final = "threshold"  # decisions.md (c): ended at the boundary, balance moved, auto-recharge, billable
FIRST_CYCLE_SETTLED = timedelta(hours=25)
"""After the first Metronome period ends, how long until its invoice is final (Metronome's 24 h grace period, and an
hour): the credit check runs then."""
LAST_PERIODS_SETTLED = timedelta(hours=25)
"""After the boundary, how long until both last periods before it are final: Stripe's final invoice (finalized about
an hour after the period ends) and Metronome's last unbillable one (its 24 h grace period, and an hour). The moved
balances are settled to Stripe's remainder then, before Metronome's first billable invoice is final."""
STILL_OPEN = timedelta(minutes=5)
"""The least time before a boundary in which its cutover can still be decided (the period-end writes need it)."""
_MONTHS = {"month": 1, "year": 12}


class CutoverDecision(BaseModel):
    """What the gate Task answers the state machine: whether the decision instant came, and what was decided."""

    batch_id: str
    stripe_customer_id: str
    ready: bool
    verdict: Literal["pending", "released", "held_back", "rolled_back", "not_migrated"]
    path: CutoverPath
    decide_at: str
    boundary: str
    check_at: str
    settle_at: str | None = None
    reason: str | None = None


def _add_months(moment: datetime, months: int, day: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(day, calendar.monthrange(year, month)[1]))


def period_boundary(subscription: StripeSubscription, not_before: datetime) -> datetime:
    """The first end of one of the subscription's billing periods at or after `not_before`."""
    anchor = datetime.fromtimestamp(subscription.billing_cycle_anchor or subscription.start_date, UTC)
    end = datetime.fromtimestamp(subscription.current_period_end or subscription.start_date, UTC)
    interval = next((i.interval for i in subscription.items if i.interval), "month")
    n = 0
    candidate = end
    while candidate < not_before:
        n += 1
        if interval == "week":
            candidate = end + timedelta(weeks=n)
        else:
            candidate = _add_months(end, n * _MONTHS.get(interval or "month", 1), anchor.day)
    return candidate


def path_of(snapshot: CustomerSnapshot) -> CutoverPath:
    return THRESHOLD if moved_at_cutover(live_subscription(snapshot)) else PERIOD_END


def _utc_now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC).replace(microsecond=0)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def decide_cutover(
    request: CustomerStepRequest, storage: RunStorage, store: ProgressStore, ledger: ParityLedger, clock: Clock
) -> CutoverDecision:
    """Before the decision instant: `ready` false and when to ask again. Then release (recorded once, with the
    boundary the later steps act on) or hold back (the phase says why; a later run asks the gate again)."""
    config = read_run(storage, request.run_key).config
    stripe_id = request.stripe_customer_id
    reached = store.get(request.batch_id, stripe_id)
    backfilled = reached.steps.get(Step.METRONOME_BACKFILL_USAGE) if reached else None
    if backfilled is None or backfilled.status is not StepStatus.SUCCEEDED:
        # excluded, or failed (and recorded) before the parallel run: nothing to cut over, its record left as it is
        planned = rfc3339(config.cutover_at)
        return CutoverDecision(
            batch_id=request.batch_id,
            stripe_customer_id=stripe_id,
            ready=True,
            verdict="not_migrated",
            path="period_end",
            decide_at=planned,
            boundary=planned,
            check_at=planned,
            reason="never reached the parallel run",
        )
    snapshot = read_snapshot(storage, request.batch_id, stripe_id)
    path = path_of(snapshot)
    now = _utc_now(clock)
    lead = timedelta(hours=config.cutover_lead_hours)
    progress = store.get(request.batch_id, stripe_id)
    gate = progress.steps.get(Step.METRONOME_CUTOVER_GATE) if progress else None
    if gate is not None and gate.status is StepStatus.SUCCEEDED:
        boundary = _time(gate.vendor_ids["boundary"])
    else:
        # the first boundary still ahead (a decision made late, say after an approval, still makes it while the
        # period is open; once it has ended, the next one)
        boundary = period_boundary(live_subscription(snapshot), max(config.cutover_at, now + STILL_OPEN))
    subscription = live_subscription(snapshot)
    after = period_boundary(subscription, boundary + timedelta(seconds=1))
    decision = CutoverDecision(
        batch_id=request.batch_id,
        stripe_customer_id=stripe_id,
        ready=False,
        verdict="pending",
        path=path,
        decide_at=rfc3339(boundary - lead),
        boundary=rfc3339(boundary),
        check_at=rfc3339(after + FIRST_CYCLE_SETTLED),
        settle_at=rfc3339(boundary + LAST_PERIODS_SETTLED),
    )
    if progress is not None and progress.phase == ROLLED_BACK:
        # rolled back while waiting: its usage is Stripe's again and its progress item is left as the rollback wrote it
        reason = progress.phase_reason or "rolled back"
        return decision.model_copy(update={"ready": True, "verdict": "rolled_back", "reason": reason})
    if gate is None or gate.status is not StepStatus.SUCCEEDED:
        if now < boundary - lead:
            return decision
        if config.strategy == "hard":
            released, reason = True, "hard cutover: no parallel run to check"
        else:
            verdict = cutover_verdict(ledger, stripe_id, now)
            released, reason = verdict.released, verdict.reason
        if not released:
            store.set_phase(request.batch_id, stripe_id, HELD_BACK, clear_cutover_at=True, reason=reason)
            return decision.model_copy(update={"ready": True, "verdict": "held_back", "reason": reason})

        def body(_: RunningStep) -> StepOutcome:
            ids = {"boundary": decision.boundary, "check_at": decision.check_at, "path": path}
            return StepOutcome("released", ids, detail=reason)

        done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_CUTOVER_GATE), request.runner, body)
        gate_reason = reason if not done.already_done else None
    else:
        gate_reason = gate.detail
    return decision.model_copy(update={"ready": True, "verdict": "released", "reason": gate_reason})


class Released(BaseModel):
    config: ResolvedConfig
    snapshot: CustomerSnapshot
    boundary: datetime
    check_at: datetime
    metronome_customer_id: str
    metronome_contract_id: str

    @property
    def subscription(self) -> StripeSubscription:
        return live_subscription(self.snapshot)

    @property
    def settle_at(self) -> datetime:
        return self.boundary + LAST_PERIODS_SETTLED


def released(request: CustomerStepRequest, storage: RunStorage, store: ProgressStore) -> Released:
    """What every step after the gate acts on; refuses a customer the gate did not release."""
    progress = store.get(request.batch_id, request.stripe_customer_id)
    steps = progress.steps if progress else {}
    gate = steps.get(Step.METRONOME_CUTOVER_GATE)
    if gate is None or gate.status is not StepStatus.SUCCEEDED:
        raise StepOrderViolated(f"{request.stripe_customer_id}: not released for cutover by the gate")
    if progress is not None and progress.phase == ROLLED_BACK:
        raise StepOrderViolated(f"{request.stripe_customer_id}: rolled back after its release; no cutover step runs")
    return Released(
        config=read_run(storage, request.run_key).config,
        snapshot=read_snapshot(storage, request.batch_id, request.stripe_customer_id),
        boundary=_time(gate.vendor_ids["boundary"]),
        check_at=_time(gate.vendor_ids["check_at"]),
        metronome_customer_id=steps[Step.METRONOME_PREPARE].vendor_ids["metronome_customer_id"],
        metronome_contract_id=steps[Step.METRONOME_CONTRACT].vendor_ids["metronome_contract_id"],
    )


def not_before(moment: datetime, clock: Clock, what: str) -> None:
    now = _utc_now(clock)
    if now < moment:
        raise CutoverTooEarly(f"{what}: not before {rfc3339(moment)} (it is {rfc3339(now)})")


def step_key(config: ResolvedConfig, step: Step, stripe_id: str, revision: int, obj: str | None = None) -> str:
    return idempotency_key(config.migration_id, step, f"{stripe_id}:{obj}" if obj else stripe_id, revision=revision)


def finish(request: CustomerStepRequest, step: Step, done: StepDone) -> CustomerStepResult:
    return result_of(request, step, "already done" if done.already_done else done.outcome, done.vendor_ids)


def end_stripe_at_period_end(
    request: CustomerStepRequest, storage: RunStorage, stripe: StripeSource, store: ProgressStore
) -> CustomerStepResult:
    """`cancel_at_period_end: true`, or a schedule from the subscription whose end_behavior is cancel (config
    `stripe_end`); read back: the subscription must end when its period ends, at the boundary."""
    cut = released(request, storage, store)
    stripe_id, sub_id = request.stripe_customer_id, cut.subscription.id

    def body(running: RunningStep) -> StepOutcome:
        def key(obj: str | None) -> str:
            return step_key(cut.config, Step.METRONOME_STRIPE_PERIOD_END, stripe_id, running.revision, obj)

        current = stripe.subscription(sub_id)
        boundary = int(cut.boundary.timestamp())
        done = current.cancel_at_period_end or current.ended_at == boundary  # a rerun after the boundary
        if not done and current.status in ENDED_STATUSES:
            raise CutoverMismatch(
                f"{stripe_id}: {sub_id} is already {current.status}"
                + (f" (ended {rfc3339(datetime.fromtimestamp(current.ended_at, UTC))})" if current.ended_at else "")
                + f", before the cutover at {rfc3339(cut.boundary)}: ended outside the migration; find out why, then "
                "roll the customer back (billmig metronome rollback) or finish it by hand"
            )
        if not done and current.current_period_end != boundary:
            raise CutoverMismatch(
                f"{stripe_id}: {sub_id}'s period ends {current.current_period_end}, not at {rfc3339(cut.boundary)}"
            )
        wrote = []
        if not done:
            if cut.config.stripe_end == "subscription_schedule":
                schedule_id = running.vendor_ids.get("stripe_schedule_id") or current.schedule_id
                if schedule_id is None:
                    schedule_id = stripe.create_schedule(
                        sub_id,
                        step_key(cut.config, Step.METRONOME_STRIPE_PERIOD_END, stripe_id, running.revision, "schedule"),
                    )
                    wrote.append("create_schedule")
                running.remember({"stripe_schedule_id": schedule_id})
                stripe.end_schedule_with_cancel(
                    schedule_id,
                    step_key(cut.config, Step.METRONOME_STRIPE_PERIOD_END, stripe_id, running.revision, "cancel"),
                )
                wrote.append("end_schedule_with_cancel")
            else:
                stripe.cancel_at_period_end(sub_id, key(None))
                wrote.append("cancel_at_period_end")
            if not stripe.subscription(sub_id).cancel_at_period_end:
                raise CutoverMismatch(f"{stripe_id}: {sub_id} is not set to end at its period end after the update")
        return StepOutcome(
            "ended at period end" if wrote else "found",
            {"stripe_subscription_id": sub_id},
            detail=f"{sub_id} ends {rfc3339(cut.boundary)}" + (f" ({', '.join(wrote)})" if wrote else ""),
        )

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_STRIPE_PERIOD_END), request.runner, body)
    return finish(request, Step.METRONOME_STRIPE_PERIOD_END, done)


def set_billable_at_boundary(
    request: CustomerStepRequest, storage: RunStorage, target: MetronomeTarget, store: ProgressStore
) -> CustomerStepResult:
    """Metronome bills the customer from the boundary on: `billable`, `effective_at` = the boundary (a future instant
    on the month-boundary path; keyed, so a resumed attempt is Metronome's replay, not a second change)."""
    cut = released(request, storage, store)
    stripe_id = request.stripe_customer_id

    def body(running: RunningStep) -> StepOutcome:
        target.set_billable_status(
            cut.metronome_customer_id,
            "billable",
            cut.boundary,
            step_key(cut.config, Step.METRONOME_BILLABLE, stripe_id, running.revision),
        )
        return StepOutcome("billable", detail=f"effective {rfc3339(cut.boundary)}")

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_BILLABLE), request.runner, body)
    return finish(request, Step.METRONOME_BILLABLE, done)


def switch_phase(request: CustomerStepRequest, storage: RunStorage, store: ProgressStore) -> CustomerStepResult:
    """The router's phase becomes `cut_over` with the boundary as its routing instant: events timed from it go to
    Metronome only, a late event for the last Stripe period still reaches Stripe."""
    cut = released(request, storage, store)
    # claimed, done and the phase written in one write, as the parallel run's: never a phase without its step
    done = settle_once(
        store,
        StepKey(request.batch_id, request.stripe_customer_id, Step.METRONOME_CUT_OVER),
        request.runner,
        CUT_OVER,
        PhaseChange(CUT_OVER, cutover_at=cut.boundary),
        detail=f"Metronome only from {rfc3339(cut.boundary)}",
    )
    return finish(request, Step.METRONOME_CUT_OVER, done)
