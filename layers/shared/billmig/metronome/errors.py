"""Errors only the Metronome path raises, each in one of the shared categories of `billmig.errors`."""

from __future__ import annotations

from billmig.errors import PermanentError, TransientError


class InvalidMigrationConfig(PermanentError):
    """The migration config (or a batch) has problems; every one is listed, naming the file, the record and the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class CustomerBlocked(PermanentError):
    """Triage put the customer in a bucket that cannot migrate (past due, unmapped price, no internal id...)."""


class CustomerMismatch(PermanentError):
    """The Metronome customer found by ingest alias belongs to another Stripe customer: never overwritten."""


class CreditReconciliationFailed(PermanentError):
    """Read back from Metronome, a commit or credit does not equal the Stripe grant's remaining balance."""


class MetronomeConflict(PermanentError):
    """Metronome answered 409 where the lookup that should resolve it found nothing (a defect, never retried)."""


class MetronomeAlreadyExists(PermanentError):
    """Metronome answered 409 to a create (a used `uniqueness_key` or ingest alias): already done, resolved by a
    lookup; raised only by calls made with the SDK's retries off, so it arrives after one request."""


class ForeignContract(PermanentError):
    """The Metronome customer already has a contract this migration did not make: never given a second one."""


class FinalInvoicePending(TransientError):
    """Stripe's final invoice of an ended subscription is not finalized yet (credits apply at finalization): the
    balance cannot be read until it is, so the step is retried."""


class CutoverTooEarly(PermanentError):
    """A cutover step ran before its instant (the state machine waits for it): nothing was written."""


class CutoverMismatch(PermanentError):
    """Read back after a cutover write, a vendor does not hold what was written (or the Stripe period does not end at
    the boundary the cutover was decided for)."""


class AutoRechargeDisabled(PermanentError):
    """Metronome turned the customer's auto-recharge off (its gated payment failed): it needs an operator."""


class BalanceSettlementTooLate(PermanentError):
    """Metronome's first billable invoice is final before the moved balances were settled to Stripe's remainder: it
    drew from the amounts as moved, so an operator settles them (nothing was written)."""


class CreditCheckFailed(PermanentError):
    """After the first Metronome cycle, a moved balance is not what Stripe had left minus what Metronome drew down."""
