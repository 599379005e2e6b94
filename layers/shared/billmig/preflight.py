"""Preflight: the first step of every batch. It validates a customer's record and enrols it in the progress store.

Running it twice is harmless: a customer whose preflight already succeeded is reported as such, not redone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from billmig.batch import parse_customer
from billmig.progress import ProgressStore
from billmig.steps import Step, StepKey, StepOutcome, run_once

STEP = Step.PREFLIGHT


class PreflightRequest(BaseModel):
    batch_id: str
    runner: str
    index: int
    customer: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.batch_id

    @property
    def subject(self) -> str | None:
        return str(self.customer.get("stripe_customer_id")) if self.customer.get("stripe_customer_id") else None


class PreflightResult(BaseModel):
    batch_id: str
    customer_id: str
    step: str = STEP
    status: str
    attempt: int


def run_preflight(request: PreflightRequest, store: ProgressStore) -> PreflightResult:
    customer = parse_customer(request.customer, source=f"batch {request.batch_id}", index=request.index)
    done = run_once(
        store,
        StepKey(request.batch_id, customer.customer_id, Step.PREFLIGHT),
        request.runner,
        lambda _: StepOutcome("done", {"internal_customer_id": customer.internal_customer_id}),
    )
    return PreflightResult(
        batch_id=request.batch_id,
        customer_id=customer.customer_id,
        status="already_done" if done.already_done else "done",
        attempt=done.attempt,
    )
