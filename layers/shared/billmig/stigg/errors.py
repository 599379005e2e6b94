"""Errors only the Stigg import raises, each in one of the shared categories of `billmig.errors`."""

from __future__ import annotations

from billmig.errors import PermanentError, TransientError


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


class StiggPaced(TransientError):
    """Stigg's limits leave no room for this call within the wait a Task may spend; Step Functions retries it later."""
