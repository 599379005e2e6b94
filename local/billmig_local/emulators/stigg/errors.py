"""Stigg's error shape: GraphQL `errors[]` whose `extensions.code` is a value of the schema's own `ErrorCode` enum.

Business errors answer HTTP 200 with `data: null` (the GraphQL convention Stigg follows); a document that does not
parse or validate answers 400 with the Apollo codes `GRAPHQL_PARSE_FAILED` / `GRAPHQL_VALIDATION_FAILED` /
`BAD_USER_INPUT`; a missing key answers 401 `UNAUTHENTICATED`; a rate limit answers 429 `RateLimitExceeded` with no
`Retry-After` (Stigg documents none).
"""

from __future__ import annotations

import uuid
from typing import Any

from graphql import GraphQLError
from starlette.responses import JSONResponse, Response

# Codes from Stigg's `ErrorCode` enum (stigg.generated.schema), used where the emulator refuses something.
BAD_USER_INPUT = "BadUserInput"
CUSTOMER_NOT_FOUND = "CustomerNotFound"
PLAN_NOT_FOUND = "PlanNotFound"
ADDON_NOT_FOUND = "AddonNotFound"
FEATURE_NOT_FOUND = "FeatureNotFound"
PRODUCT_NOT_FOUND = "ProductNotFoundError"
SUBSCRIPTION_NOT_FOUND = "SubscriptionNotFound"
SUBSCRIPTION_ALREADY_CANCELED = "SubscriptionAlreadyCanceledOrExpired"
DUPLICATED_ENTITY = "DuplicatedEntityNotAllowed"
UNPUBLISHED_PACKAGE = "UnPublishedPackage"
PACKAGE_ALREADY_PUBLISHED = "PackageAlreadyPublished"
METERED_WITH_EVENTS = "CannotReportUsageForEntitlementWithMeterError"
NOT_METERED = "MeteringNotAvailableForFeatureType"
RATE_LIMIT_EXCEEDED = "RateLimitExceeded"
UNAUTHENTICATED = "UNAUTHENTICATED"

# Apollo Server's codes for requests that never reach a resolver.
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_VARIABLES = "BAD_USER_INPUT"
INTERNAL_ERROR = "INTERNAL_SERVER_ERROR"


class StiggError(GraphQLError):
    """Raised by a resolver; becomes one `errors[]` entry carrying `extensions.code` (and `traceId`, as Stigg's)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, extensions={"code": code, "traceId": uuid.uuid4().hex, **details})
        self.code = code


class RequestRefused(Exception):
    """Raised before execution: the whole request answers `status` with one GraphQL error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, "traceId": uuid.uuid4().hex}}], "data": None}


def error_response(status: int, message: str, code: str = "") -> Response:
    """The `EmulatorControl` hook: injected faults and rate limits answer in the GraphQL error shape."""
    if status == 429 or code == "rate_limit":
        code = RATE_LIMIT_EXCEEDED
    return JSONResponse(error_body(code or INTERNAL_ERROR, message), status_code=status)
