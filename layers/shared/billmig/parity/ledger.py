"""Where parity results and approvals are kept, and the cutover gate that reads them.

The gate releases a customer for cutover only when its last full (closed) billing period before the cutover decision
passed parity with its dual-write completeness holding, or when an operator approved it; everything else keeps the
customer in the parallel run, with the reason said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from billmig.parity.verdicts import Approval, GateVerdict, PeriodParity


class ParityLedger(Protocol):
    def record(self, result: PeriodParity) -> None:
        """Keep `result` as the customer's parity for its period (replacing an earlier run's)."""
        ...

    def periods(self, stripe_customer_id: str) -> list[PeriodParity]:
        """Every period checked for the customer, oldest first."""
        ...

    def approve(self, approval: Approval) -> None: ...

    def approvals(self, stripe_customer_id: str) -> list[Approval]:
        """Every approval recorded for the customer, oldest first (the audit trail)."""
        ...


def cutover_verdict(ledger: ParityLedger, stripe_customer_id: str, decided_at: datetime) -> GateVerdict:
    """Release or hold back one customer at `decided_at` (the cutover decision's instant on the world clock)."""
    approvals = ledger.approvals(stripe_customer_id)
    if approvals:
        latest = approvals[-1]
        return GateVerdict(
            released=True,
            reason=f"approved by {latest.approved_by} at {latest.approved_at.isoformat()}: {latest.reason}",
            approval=latest,
        )
    closed = [p for p in ledger.periods(stripe_customer_id) if p.closed and p.period_end <= decided_at]
    if not closed:
        return GateVerdict(released=False, reason="no closed billing period has been checked for parity yet")
    last = max(closed, key=lambda p: p.period_start)
    period = f"{last.period_start:%Y-%m-%d}..{last.period_end:%Y-%m-%d}"
    if not last.completeness_holds:
        causes = sorted({d.cause.value for d in last.differences})
        return GateVerdict(
            released=False,
            reason=f"dual-write completeness fails for {period}: {', '.join(causes)}",
            period_start=last.period_start,
        )
    if not last.within_tolerance:
        causes = sorted({d.cause.value for d in last.differences}) or ["outside tolerance"]
        return GateVerdict(
            released=False,
            reason=f"parity outside tolerance for {period}: {', '.join(causes)}",
            period_start=last.period_start,
        )
    return GateVerdict(released=True, reason=f"parity passed for {period}", period_start=last.period_start)
