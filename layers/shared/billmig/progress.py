"""Each subject's progress through a run, and the rules for moving it on.

A run is one execution's unit of work (a migration batch, a Stigg import); a subject is what it moves: a customer,
or an import record or chunk (`paid#...`, `chunk#...`).

The rules are pure functions over a `SubjectProgress` so they can be reasoned about and tested without a database;
an adapter (`billmig.adapters.dynamodb_progress`) applies them atomically with an optimistic version check, which is
what keeps two runners from both claiming one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from billmig.errors import StepClaimedElsewhere


class StepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class SubjectState(StrEnum):
    """The subject's state after its latest step transition: what the status index is queried by."""

    ENROLLED = "enrolled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ErrorRecord(BaseModel):
    type: str
    message: str
    transient: bool
    at: datetime


class StepRecord(BaseModel):
    status: StepStatus
    attempts: int = 0
    # Bumped when a step is claimed again after a permanent failure, so vendor idempotency keys change with it.
    revision: int = 1
    runner: str | None = None
    lease_until: datetime | None = None
    vendor_ids: dict[str, str] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: ErrorRecord | None = None
    # What the step found or did, for reports: e.g. created, updated, skipped (Stigg's updatedAt rule).
    outcome: str | None = None
    detail: str | None = None


class SubjectProgress(BaseModel):
    run_id: str
    subject: str
    state: SubjectState = SubjectState.ENROLLED
    current_step: str | None = None
    # Where the subject is in its migration's lifecycle (e.g. `parallel_run`): what the usage router reads.
    phase: str | None = None
    # Written with the phase, for the usage router: the customer's internal id (its Metronome ingest alias and the id
    # its usage events carry), from when its events go to both vendors, and the instant they go to Metronome only.
    ingest_alias: str | None = None
    dual_write_from: datetime | None = None
    cutover_at: datetime | None = None
    # Why the subject is in its phase when that needs saying (`held_back`: the parity gate's reason).
    phase_reason: str | None = None
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    enrolled_at: datetime
    updated_at: datetime
    version: int = 0


@dataclass(frozen=True)
class StepClaim:
    """What a runner got when it asked for a step: either the step to run, or the result of an earlier run."""

    record: StepRecord
    already_succeeded: bool

    @property
    def attempt(self) -> int:
        return self.record.attempts


@dataclass(frozen=True)
class PhaseChange:
    """A move to `phase` with the routing facts written with it (those not given are kept): `clear_cutover_at`
    removes the routing instant (a customer held back keeps dual-writing); `reason` replaces the phase's reason
    (none given: the new phase has none)."""

    phase: str
    ingest_alias: str | None = None
    dual_write_from: datetime | None = None
    cutover_at: datetime | None = None
    clear_cutover_at: bool = False
    reason: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def claim(progress: SubjectProgress, step: str, runner: str, now: datetime, lease: timedelta) -> StepClaim:
    """Claim `step` for `runner`, or report that it already succeeded; raises if another runner holds it."""
    current = progress.steps.get(step)
    if current is not None and current.status is StepStatus.SUCCEEDED:
        return StepClaim(record=current, already_succeeded=True)
    if (
        current is not None
        and current.status is StepStatus.RUNNING
        and current.runner != runner
        and current.lease_until is not None
        and current.lease_until > now
    ):
        raise StepClaimedElsewhere(
            f"step {step!r} of {progress.subject!r} (run {progress.run_id!r}) is held by "
            f"{current.runner!r} until {current.lease_until.isoformat()}"
        )
    revision = 1
    if current is not None:
        revision = current.revision
        if current.status is StepStatus.FAILED and current.last_error and not current.last_error.transient:
            revision += 1
    record = StepRecord(
        status=StepStatus.RUNNING,
        attempts=(current.attempts if current else 0) + 1,
        revision=revision,
        runner=runner,
        lease_until=now + lease,
        vendor_ids=dict(current.vendor_ids) if current else {},
        started_at=current.started_at if current and current.started_at else now,
        last_error=current.last_error if current else None,
    )
    progress.steps[step] = record
    progress.state = SubjectState.RUNNING
    progress.current_step = step
    progress.updated_at = now
    return StepClaim(record=record, already_succeeded=False)


def _running_record(progress: SubjectProgress, step: str) -> StepRecord:
    record = progress.steps.get(step)
    if record is None:
        raise ValueError(f"step {step!r} of {progress.subject!r} was never claimed")
    return record


def remember_vendor_ids(progress: SubjectProgress, step: str, vendor_ids: dict[str, str], now: datetime) -> None:
    """Record ids the moment a vendor object exists, so a crash before completion cannot orphan it."""
    record = _running_record(progress, step)
    record.vendor_ids.update(vendor_ids)
    progress.updated_at = now


def change_phase(progress: SubjectProgress, change: PhaseChange, now: datetime) -> SubjectProgress:
    progress.phase = change.phase
    progress.ingest_alias = change.ingest_alias or progress.ingest_alias
    progress.dual_write_from = change.dual_write_from or progress.dual_write_from
    progress.cutover_at = None if change.clear_cutover_at else (change.cutover_at or progress.cutover_at)
    progress.phase_reason = change.reason
    progress.updated_at = now
    return progress


def succeed(
    progress: SubjectProgress,
    step: str,
    vendor_ids: dict[str, str],
    now: datetime,
    outcome: str | None = None,
    detail: str | None = None,
    phase: PhaseChange | None = None,
) -> SubjectProgress:
    if phase is not None:
        change_phase(progress, phase, now)
    record = _running_record(progress, step)
    record.status = StepStatus.SUCCEEDED
    record.vendor_ids.update(vendor_ids)
    record.outcome = outcome
    record.detail = detail
    record.finished_at = now
    record.lease_until = None
    progress.state = SubjectState.SUCCEEDED
    progress.current_step = step
    progress.updated_at = now
    return progress


def fail(
    progress: SubjectProgress, step: str, error: ErrorRecord, now: datetime, vendor_ids: dict[str, str] | None = None
) -> SubjectProgress:
    record = progress.steps.get(step)
    if record is None:
        record = StepRecord(status=StepStatus.FAILED, started_at=now)
        progress.steps[step] = record
    record.vendor_ids.update(vendor_ids or {})
    record.status = StepStatus.FAILED
    record.last_error = error
    record.finished_at = now
    record.lease_until = None
    progress.state = SubjectState.FAILED
    progress.current_step = step
    progress.updated_at = now
    return progress


class ProgressStore(Protocol):
    """Where progress lives. Every method is atomic per subject."""

    def enrol(self, run_id: str, subject: str) -> SubjectProgress: ...

    def get(self, run_id: str, subject: str) -> SubjectProgress | None: ...

    def claim_step(
        self, run_id: str, subject: str, step: str, runner: str, lease: timedelta, *, enrols: bool = False
    ) -> StepClaim:
        """Claim the step (enrolling a subject the store does not know yet, in the same change). `enrols`: the step
        is the subject's first in the run, so the claim is tried as the enrolling write before any read of the item
        (a subject that turns out to exist costs that write, refused, and nothing else)."""
        ...

    def remember_vendor_ids(self, run_id: str, subject: str, step: str, vendor_ids: dict[str, str]) -> None: ...

    def complete_step(
        self,
        run_id: str,
        subject: str,
        step: str,
        vendor_ids: dict[str, str],
        outcome: str | None = None,
        detail: str | None = None,
    ) -> SubjectProgress: ...

    def settle_step(
        self,
        run_id: str,
        subject: str,
        step: str,
        runner: str,
        lease: timedelta,
        outcome: str,
        phase: PhaseChange,
        detail: str | None = None,
    ) -> StepClaim:
        """Claim the step and record its success with the subject's new phase, in one atomic change: for a step
        that is nothing but that change (no vendor write for a lease to guard). A step done already is left as it
        is (the claim returned says so)."""
        ...

    def fail_step(
        self, run_id: str, subject: str, step: str, error: ErrorRecord, *, vendor_ids: dict[str, str] | None = None
    ) -> SubjectProgress:
        """Record the step's error, and the ids it noted before it failed."""
        ...

    def set_phase(
        self,
        run_id: str,
        subject: str,
        phase: str,
        *,
        ingest_alias: str | None = None,
        dual_write_from: datetime | None = None,
        cutover_at: datetime | None = None,
        clear_cutover_at: bool = False,
        reason: str | None = None,
    ) -> SubjectProgress:
        """Move the subject to `phase` (see `PhaseChange` for the routing facts)."""
        ...

    def subjects_in_state(self, run_id: str, state: SubjectState) -> list[SubjectProgress]: ...

    def record_outcomes(self, records: list[SubjectProgress]) -> None:
        """Write finished records as they are, in bulk: for idempotent bulk calls, where the last writer is right."""
        ...

    def all_in_run(self, run_id: str) -> list[SubjectProgress]: ...

    def runs_of(self, subject: str) -> list[str]:
        """The runs the subject is in that gave it a phase, the latest written first."""
        ...
