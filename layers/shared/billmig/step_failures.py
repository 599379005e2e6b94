"""Recording a step's failure where Step Functions caught it, so operators find it in the progress store."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from billmig.batch import customer_key
from billmig.progress import ErrorRecord, ProgressStore, utc_now
from billmig.retry_policy import is_transient


class CaughtError(BaseModel):
    """What a Catch puts under its ResultPath: the error name and the Lambda error payload as a JSON string."""

    error: str = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")

    def message(self) -> str:
        try:
            payload = json.loads(self.cause)
        except ValueError:
            return self.cause
        return str(payload.get("errorMessage", self.cause)) if isinstance(payload, dict) else self.cause


class FailureReport(BaseModel):
    batch_id: str
    step: str
    index: int
    customer: dict[str, Any]
    caught: CaughtError

    @property
    def run_id(self) -> str:
        return self.batch_id

    @property
    def subject(self) -> str:
        """Import steps track records and chunks under their own keys (`paid#...`, `chunk#...`)."""
        progress_key = self.customer.get("progress_key")
        if isinstance(progress_key, str) and progress_key:
            return progress_key
        return customer_key(self.customer, self.index)


class RecordedFailure(BaseModel):
    batch_id: str
    customer_id: str
    step: str
    status: str = "failed"
    error_type: str
    error_message: str


def record_failure(report: FailureReport, store: ProgressStore) -> RecordedFailure:
    error = ErrorRecord(
        type=report.caught.error,
        message=report.caught.message(),
        transient=is_transient(report.caught.error),
        at=utc_now(),
    )
    store.fail_step(report.batch_id, report.subject, report.step, error)
    return RecordedFailure(
        batch_id=report.batch_id,
        customer_id=report.subject,
        step=report.step,
        error_type=error.type,
        error_message=error.message,
    )
