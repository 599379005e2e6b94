"""Typed errors: the class name is the Step Functions error name, so the state machines decide by type.

Two categories, and every error the domain raises on purpose belongs to one: a `TransientError` is worth retrying
(the same call can succeed later), a `PermanentError` is not (retrying repeats the failure and, worse, can hide it).
The categories here are vendor-neutral; an error that only one vendor's path raises lives beside that vendor
(`billmig/stigg/errors.py`) and subclasses one of these. `billmig.retry_policy` collects every transient class, at
any depth, and is the one definition the state machines' `Retry` blocks are generated from.
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
    """Another runner holds this step; its lease will end or it will finish."""


class VendorThrottled(TransientError):
    """The vendor answered 429; back off and try again."""


class VendorUnavailable(TransientError):
    """A 5xx, timeout or connection failure talking to a vendor."""


class ProgressStoreUnavailable(TransientError):
    """DynamoDB throttled or failed the request."""


# --- permanent ----------------------------------------------------------------------------------------------------
class VendorRejected(PermanentError):
    """The vendor refused the request as invalid (4xx other than 409/429)."""


class IdempotencyKeyReused(PermanentError):
    """An idempotency key was reused with other parameters: a defect, never retried."""
