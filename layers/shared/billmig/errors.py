"""Typed errors: the class name is the Step Functions error name, so the state machines decide by type.

`TransientError` subclasses are worth retrying (the same call can succeed later); `PermanentError` subclasses are not
(retrying repeats the failure and, worse, can hide it). Every ASL Task retries exactly the transient names listed in
`TRANSIENT_ERROR_NAMES`; a test keeps the two in step.
"""

from __future__ import annotations


class MigrationError(Exception):
    """Base of every error the domain raises on purpose."""

    transient: bool = False


class TransientError(MigrationError):
    transient = True


class PermanentError(MigrationError):
    transient = False


# --- transient --------------------------------------------------------------------------------------------------
class StepClaimedElsewhere(TransientError):
    """Another runner holds this customer's step; its lease will end or it will finish."""


class VendorThrottled(TransientError):
    """The vendor answered 429; back off and try again."""


class VendorUnavailable(TransientError):
    """A 5xx, timeout or connection failure talking to a vendor."""


class ProgressStoreUnavailable(TransientError):
    """DynamoDB throttled or failed the request."""


# --- permanent ----------------------------------------------------------------------------------------------------
class InvalidCustomerRecord(PermanentError):
    """The input record for a customer is unusable; fix the input, then rerun."""


class VendorRejected(PermanentError):
    """The vendor refused the request as invalid (4xx other than 409/429)."""


class IdempotencyKeyReused(PermanentError):
    """An idempotency key was reused with other parameters: a defect, never retried."""


# --- Stigg import -------------------------------------------------------------------------------------------------
class StiggImportPending(TransientError):
    """Stigg applies subscription imports in the background; the rows are not readable yet."""


class InvalidImportFile(PermanentError):
    """An import file has problems; every one is listed, naming the file, the record and the field."""

    def __init__(self, message: str, problems: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class ImportOrderViolated(PermanentError):
    """Records refer to customers Stigg does not have, or a paid plan lacks what it needs: import those first."""


class SubscriptionExists(PermanentError):
    """Stigg already has an active subscription for this customer and product: resolved by a lookup, not retried."""


class PaymentRequired(PermanentError):
    """Stigg refused a paid plan because the customer has no payment method."""


TRANSIENT_ERROR_NAMES: tuple[str, ...] = tuple(sorted(cls.__name__ for cls in TransientError.__subclasses__()))
PERMANENT_ERROR_NAMES: tuple[str, ...] = tuple(sorted(cls.__name__ for cls in PermanentError.__subclasses__()))
