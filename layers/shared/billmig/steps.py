"""Every step's name, and the one way a step runs exactly once.

A step is claimed with a lease (so of two runners one wins), skipped when it already succeeded, and a vendor id
that only the progress store could find again is recorded the moment the vendor object exists (`remember`), so a
crash between that write and the step's completion never orphans what was made. An id the step finds again at the
vendor anyway (by alias, by a key it put on the object) is only `note`d: written with the step's outcome or its
error, not in a write of its own. A typed error is recorded against the step before it propagates to Step
Functions, which retries only transient ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from billmig.progress import ErrorRecord, PhaseChange, ProgressStore, StepClaim, utc_now

DEFAULT_LEASE = timedelta(minutes=5)


class Step(StrEnum):
    """The steps the progress store and the state machines name; an ASL `step` value must be one of these."""

    STIGG_CUSTOMERS = "stigg.customers"
    STIGG_SUBSCRIPTIONS = "stigg.subscriptions"
    STIGG_IMPORT = "stigg.import"
    STIGG_VERIFY = "stigg.verify"
    STIGG_PROVISION = "stigg.provision"
    STIGG_USAGE = "stigg.usage"
    STRIPE_CANCEL = "stripe.cancel"
    STIGG_PREPARE = "stigg.prepare"
    STIGG_REPORT = "stigg.report"
    METRONOME_SNAPSHOT = "metronome.snapshot"
    METRONOME_PREPARE = "metronome.prepare"
    METRONOME_CONTRACT = "metronome.contract"
    METRONOME_PARALLEL_RUN = "metronome.parallel_run"
    METRONOME_CUTOVER_GATE = "metronome.cutover_gate"
    METRONOME_STRIPE_PERIOD_END = "metronome.stripe_period_end"
    METRONOME_STRIPE_END_NOW = "metronome.stripe_end_now"
    METRONOME_MOVE_BALANCE = "metronome.move_balance"
    METRONOME_AUTO_RECHARGE = "metronome.auto_recharge"
    METRONOME_BILLABLE = "metronome.billable"
    METRONOME_CUT_OVER = "metronome.cut_over"
    METRONOME_SETTLE_BALANCES = "metronome.settle_balances"
    METRONOME_CREDIT_CHECK = "metronome.credit_check"
    PARITY_CUSTOMERS = "parity.customers"
    PARITY_CHECK = "parity.check"
    PARITY_REPORT = "parity.report"
    METRONOME_ROLLBACK = "metronome.rollback"
    METRONOME_ROLLBACK_ROUTE = "metronome.rollback.route"
    METRONOME_ROLLBACK_UNBILLABLE = "metronome.rollback.unbillable"
    METRONOME_ROLLBACK_END_CONTRACT = "metronome.rollback.end_contract"
    METRONOME_ROLLBACK_STRIPE = "metronome.rollback.stripe_subscription"
    METRONOME_ROLLBACK_RESEND = "metronome.rollback.resend"
    METRONOME_CLEANUP = "metronome.cleanup"
    METRONOME_CLEANUP_ROUTE = "metronome.cleanup.route"
    METRONOME_CLEANUP_PRICES = "metronome.cleanup.prices"
    METRONOME_CLEANUP_METERS = "metronome.cleanup.meters"
    METRONOME_BACKFILL_USAGE = "metronome.backfill_usage"
    RECORD_FAILURE = "record_failure"


@dataclass(frozen=True)
class StepKey:
    run_id: str
    subject: str
    step: str


@dataclass(frozen=True)
class StepOutcome:
    """What a step's body reports: a word for reports (created, skipped, cancelled...), the ids it made or found."""

    outcome: str
    vendor_ids: dict[str, str] = field(default_factory=dict)
    detail: str | None = None


@dataclass(frozen=True)
class StepDone:
    outcome: str
    vendor_ids: dict[str, str]
    attempt: int
    revision: int
    already_done: bool


class RunningStep:
    """What a step's body gets: which attempt and revision this is, ids an earlier attempt recorded, `remember` and
    `note`."""

    def __init__(self, store: ProgressStore, key: StepKey, claim: StepClaim) -> None:
        self._store = store
        self.key = key
        self.attempt = claim.attempt
        self.revision = claim.record.revision
        self.vendor_ids: dict[str, str] = dict(claim.record.vendor_ids)
        self.noted: dict[str, str] = {}

    def remember(self, vendor_ids: dict[str, str]) -> None:
        """Record ids as soon as the vendor has the object, before anything else can fail: for an object that a
        resumed attempt could not find again at the vendor."""
        self._store.remember_vendor_ids(self.key.run_id, self.key.subject, self.key.step, vendor_ids)
        self.vendor_ids.update(vendor_ids)

    def note(self, vendor_ids: dict[str, str]) -> None:
        """Keep ids for the step's record, written with its outcome or its error: for an object the step looks up at
        the vendor before writing, so an attempt that dies before either only costs the resumed one a lookup (and
        its report says `found` for what the dead attempt made)."""
        self.noted.update(vendor_ids)
        self.vendor_ids.update(vendor_ids)


def run_once(
    store: ProgressStore,
    key: StepKey,
    runner: str,
    body: Callable[[RunningStep], StepOutcome],
    *,
    lease: timedelta = DEFAULT_LEASE,
    enrols: bool = False,
) -> StepDone:
    """Run `body` unless the step already succeeded; record its outcome, or its typed error, either way.

    `enrols`: the step is the subject's first in the run (its claim is tried as the write that enrols it, unread)."""
    # claim_step enrols a new subject itself: no separate write of the item before the claim
    claim = store.claim_step(key.run_id, key.subject, key.step, runner, lease, enrols=enrols)
    if claim.already_succeeded:
        return StepDone(
            outcome=claim.record.outcome or "done",
            vendor_ids=dict(claim.record.vendor_ids),
            attempt=claim.attempt,
            revision=claim.record.revision,
            already_done=True,
        )
    running = RunningStep(store, key, claim)
    try:
        result = body(running)
    except Exception as exc:
        error = ErrorRecord(
            type=type(exc).__name__, message=str(exc), transient=bool(getattr(exc, "transient", False)), at=utc_now()
        )
        # The error itself is what Step Functions must see; failing to record it must not replace it.
        with contextlib.suppress(Exception):
            store.fail_step(key.run_id, key.subject, key.step, error, vendor_ids=running.noted)
        raise
    store.complete_step(
        key.run_id, key.subject, key.step, {**running.vendor_ids, **result.vendor_ids}, result.outcome, result.detail
    )
    return StepDone(
        outcome=result.outcome,
        vendor_ids={**running.vendor_ids, **result.vendor_ids},
        attempt=claim.attempt,
        revision=claim.record.revision,
        already_done=False,
    )


def settle_once(
    store: ProgressStore,
    key: StepKey,
    runner: str,
    outcome: str,
    phase: PhaseChange,
    *,
    detail: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> StepDone:
    """A step that is only a change of the subject's phase: claimed and done in one write (`run_once` claims first
    because a body's vendor writes need the lease; this one has none), or reported done when it already is."""
    claim = store.settle_step(key.run_id, key.subject, key.step, runner, lease, outcome, phase, detail)
    return StepDone(
        outcome=(claim.record.outcome or "done") if claim.already_succeeded else outcome,
        vendor_ids=dict(claim.record.vendor_ids),
        attempt=claim.attempt,
        revision=claim.record.revision,
        already_done=claim.already_succeeded,
    )
