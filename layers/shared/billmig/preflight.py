"""Preflight: the first step of every batch. It validates a customer's record and enrols it in the progress store.

Running it twice is harmless: a customer whose preflight already succeeded is reported as such, not redone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from billmig.batch import parse_customer
from billmig.progress import ProgressStore

STEP = "preflight"
LEASE = timedelta(minutes=5)


class PreflightRequest(BaseModel):
    batch_id: str
    runner: str
    index: int
    customer: dict[str, Any]


class PreflightResult(BaseModel):
    batch_id: str
    customer_id: str
    step: str = STEP
    status: str
    attempt: int


def run_preflight(request: PreflightRequest, store: ProgressStore) -> PreflightResult:
    customer = parse_customer(request.customer, source=f"batch {request.batch_id}", index=request.index)
    store.enrol(request.batch_id, customer.customer_id)
    claim = store.claim_step(request.batch_id, customer.customer_id, STEP, request.runner, LEASE)
    if claim.already_succeeded:
        return PreflightResult(
            batch_id=request.batch_id, customer_id=customer.customer_id, status="already_done", attempt=claim.attempt
        )
    store.complete_step(
        request.batch_id,
        customer.customer_id,
        STEP,
        {"internal_customer_id": customer.internal_customer_id},
    )
    return PreflightResult(
        batch_id=request.batch_id, customer_id=customer.customer_id, status="done", attempt=claim.attempt
    )
