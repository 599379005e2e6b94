"""How a batch's migration ended, for the execution's output: Step Functions shows SUCCEEDED once every customer has
settled, so the output has to say whether that is everyone cut over or "completed with errors", with the counts and
each customer that did not get there and why (a failed step's error, the parity gate's reason, its phase)."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, computed_field

from billmig.progress import ProgressStore, StepStatus, SubjectProgress
from billmig.usage.routing import CLEANED_UP, CUT_OVER, HELD_BACK

COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed with errors"
MIGRATED = frozenset({CUT_OVER, CLEANED_UP})


class BatchOutcome(BaseModel):
    status: str
    customers: int
    cut_over: int
    phases: dict[str, int]
    failed: dict[str, str]  # customer -> "step: error type: message" (cut over or not)
    held_back: dict[str, str]  # customer -> the gate's reason
    not_cut_over: dict[str, str]  # a customer not cut over, neither failed nor held back -> its phase

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> str:
        return (
            f"{self.status}: {self.cut_over} of {self.customers} cut over, {len(self.held_back)} held back, "
            f"{len(self.failed)} failed, {len(self.not_cut_over)} not cut over for another reason"
        )


def _failure(progress: SubjectProgress) -> str | None:
    for step, record in progress.steps.items():
        if record.status is StepStatus.FAILED and record.last_error is not None:
            return f"{step}: {record.last_error.type}: {record.last_error.message}"
    return None


def batch_outcome(store: ProgressStore, batch_id: str) -> BatchOutcome:
    return outcome_of(store.all_in_run(batch_id))


def outcome_of(progress_items: list[SubjectProgress]) -> BatchOutcome:
    """From the batch's progress items as read (`billmig metronome status` reads them for its step counts too)."""
    subjects = sorted(progress_items, key=lambda p: p.subject)
    phases = Counter(p.phase or "migrating" for p in subjects)
    failed: dict[str, str] = {}
    held_back: dict[str, str] = {}
    other: dict[str, str] = {}
    for progress in subjects:
        failure = _failure(progress)
        if failure is not None:  # a cut-over customer too: its credit check after the first cycle can fail
            failed[progress.subject] = failure
        elif progress.phase in MIGRATED:
            continue
        elif progress.phase == HELD_BACK:
            held_back[progress.subject] = progress.phase_reason or "no reason recorded"
        else:
            other[progress.subject] = progress.phase or "migrating"
    cut_over = sum(1 for p in subjects if p.phase in MIGRATED)
    return BatchOutcome(
        status=COMPLETED if cut_over == len(subjects) and not failed else COMPLETED_WITH_ERRORS,
        customers=len(subjects),
        cut_over=cut_over,
        phases=dict(sorted(phases.items())),
        failed=failed,
        held_back=held_back,
        not_cut_over=other,
    )
