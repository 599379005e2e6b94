"""Which errors a state machine retries: one definition, from which every Task's `Retry` block is generated.

A Task retries every transient error class of the domain, at any depth of the hierarchy, and Lambda's own transient
failures (a throttle at the concurrency limit, a service or SDK fault); nothing permanent is ever retried. Adding a
transient error is one class: `billmig_local.asl_retries` rewrites the ASL files from here and the contract test
(`tests/unit/test_asl_contract.py`) fails until it has.
"""

from __future__ import annotations

from typing import Any

from billmig.errors import MigrationError, PermanentError, TransientError

# Every module that defines errors is imported here, so their classes exist when the hierarchy is walked.
from billmig.metronome import errors as _metronome_errors  # noqa: F401
from billmig.stigg import errors as _stigg_errors  # noqa: F401

LAMBDA_TRANSIENT_ERROR_NAMES: tuple[str, ...] = (
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ServiceException",
    "Lambda.TooManyRequestsException",
)

DOMAIN_RETRY: dict[str, Any] = {"IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 6, "JitterStrategy": "FULL"}
# A Map wider than the function's concurrency (a batch's customers reaching their boundary at once) is throttled in
# waves: up to ~3 minutes of jittered waits, none longer than 30 s, so every wave finds a free environment in time.
LAMBDA_RETRY: dict[str, Any] = {
    "IntervalSeconds": 1,
    "BackoffRate": 2,
    "MaxAttempts": 10,
    "MaxDelaySeconds": 30,
    "JitterStrategy": "FULL",
}


def error_names(category: type[MigrationError]) -> tuple[str, ...]:
    """The names of every class below `category`, however deep (`__subclasses__` alone sees one level)."""
    found: set[type[MigrationError]] = set()
    pending = list(category.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return tuple(sorted(cls.__name__ for cls in found))


TRANSIENT_ERROR_NAMES: tuple[str, ...] = error_names(TransientError)
PERMANENT_ERROR_NAMES: tuple[str, ...] = error_names(PermanentError)


def is_transient(error_name: str) -> bool:
    """Whether an error a Catch saw (by its Step Functions name) could succeed if tried again."""
    return error_name in TRANSIENT_ERROR_NAMES or error_name in LAMBDA_TRANSIENT_ERROR_NAMES


def task_retriers(specific: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A Task's `Retry`: its own retriers first (e.g. a longer wait for one error), then the two categories.

    Step Functions uses the first retrier whose `ErrorEquals` matches, so the category retrier lists only the
    transient names that no specific retrier already handles.
    """
    specific = list(specific or [])
    handled = {name for rule in specific for name in rule["ErrorEquals"]}
    domain = [name for name in TRANSIENT_ERROR_NAMES if name not in handled]
    rules = [*specific]
    if domain:
        rules.append({"ErrorEquals": domain, **DOMAIN_RETRY})
    rules.append({"ErrorEquals": list(LAMBDA_TRANSIENT_ERROR_NAMES), **LAMBDA_RETRY})
    return rules
