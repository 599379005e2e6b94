"""A batch's standing, read from the progress store's state index: what operators check after each run."""

from __future__ import annotations

from pydantic import BaseModel

from billmig.progress import ProgressStore, SubjectState


class ReportRequest(BaseModel):
    batch_id: str

    @property
    def run_id(self) -> str:
        return self.batch_id

    @property
    def subject(self) -> str | None:
        return None


class FailedCustomer(BaseModel):
    customer_id: str
    step: str | None
    error_type: str | None
    error_message: str | None


class BatchReport(BaseModel):
    batch_id: str
    counts: dict[str, int]
    failed: list[FailedCustomer]


def report_batch(batch_id: str, store: ProgressStore) -> BatchReport:
    counts: dict[str, int] = {}
    failed: list[FailedCustomer] = []
    for state in SubjectState:
        customers = store.subjects_in_state(batch_id, state)
        counts[state.value] = len(customers)
        if state is SubjectState.FAILED:
            for progress in customers:
                record = progress.steps.get(progress.current_step or "")
                error = record.last_error if record else None
                failed.append(
                    FailedCustomer(
                        customer_id=progress.subject,
                        step=progress.current_step,
                        error_type=error.type if error else None,
                        error_message=error.message if error else None,
                    )
                )
    return BatchReport(batch_id=batch_id, counts=counts, failed=failed)
