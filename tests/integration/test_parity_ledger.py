"""The parity ledger and the cutover gate, for real against the template's table on the local stack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.parity.ledger import cutover_verdict
from billmig.parity.verdicts import Approval, Cause, Difference, PeriodParity
from billmig.progress import SubjectState
from billmig_local.stack import LocalStack

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture()
def ledger(local_stack: LocalStack, dynamodb: Any) -> DynamoDBParityLedger:
    return DynamoDBParityLedger(local_stack.outputs["ProgressTableName"], client=dynamodb)


@pytest.fixture()
def customer() -> str:
    return f"cus_{uuid.uuid4().hex[:10]}"


def period(customer: str, start: datetime, end: datetime, *, within: bool = True, **changes: Any) -> PeriodParity:
    return PeriodParity(
        stripe_customer_id=customer,
        batch_id="batch-ledger",
        period_start=start,
        period_end=end,
        closed=changes.pop("closed", True),
        parity_run_id=changes.pop("parity_run_id", "run-1"),
        checked_at=end,
        stripe_total_cents=1000,
        metronome_total_cents=1000 if within else 1500,
        within_tolerance=within,
        **changes,
    )


def test_a_newer_run_replaces_a_period_oldest_first(ledger: DynamoDBParityLedger, customer: str) -> None:
    ledger.record(period(customer, FEB, MAR, within=False))
    ledger.record(period(customer, JAN, FEB))
    ledger.record(period(customer, FEB, MAR, parity_run_id="run-2"))

    found = ledger.periods(customer)

    assert [(p.period_start, p.parity_run_id, p.within_tolerance) for p in found] == [
        (JAN, "run-1", True),
        (FEB, "run-2", True),
    ]


def test_the_gate_holds_back_until_a_closed_period_passes(ledger: DynamoDBParityLedger, customer: str) -> None:
    assert not cutover_verdict(ledger, customer, MAR).released

    ledger.record(period(customer, FEB, MAR, closed=False))  # the open period's preview does not count
    assert "no closed billing period" in cutover_verdict(ledger, customer, FEB).reason

    ledger.record(period(customer, JAN, FEB, within=False))
    held = cutover_verdict(ledger, customer, FEB)
    assert not held.released and "outside tolerance for 2026-01-01..2026-02-01" in held.reason

    ledger.record(period(customer, JAN, FEB, parity_run_id="run-2"))
    assert cutover_verdict(ledger, customer, FEB).released


def test_missing_usage_holds_back_even_within_tolerance(ledger: DynamoDBParityLedger, customer: str) -> None:
    dropped = Difference(cause=Cause.MISSING_USAGE, cents=3, evidence="1 event", suggested_fix="resend")
    ledger.record(period(customer, JAN, FEB, differences=[dropped]))

    verdict = cutover_verdict(ledger, customer, FEB)

    assert not verdict.released and "completeness fails" in verdict.reason and "missing_usage" in verdict.reason


def test_an_approval_releases_and_is_kept_as_an_audit_trail(
    ledger: DynamoDBParityLedger, customer: str, local_stack: LocalStack, dynamodb: Any
) -> None:
    ledger.record(period(customer, JAN, FEB, within=False))
    first = Approval(stripe_customer_id=customer, approved_by="ana", approved_at=FEB, reason="known rounding")
    second = Approval(stripe_customer_id=customer, approved_by="bo", approved_at=MAR, reason="re-checked")
    ledger.approve(first)
    ledger.approve(second)

    verdict = cutover_verdict(ledger, customer, FEB)

    assert verdict.released and verdict.approval == second and "approved by bo" in verdict.reason
    assert ledger.approvals(customer) == [first, second]
    progress = DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)
    assert progress.subjects_in_state(f"parity#{customer}", SubjectState.SUCCEEDED) == []
