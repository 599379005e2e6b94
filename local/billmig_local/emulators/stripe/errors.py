"""Stripe's error shape: `{"error": {type, code, message, param}}` with the status the SDK maps to its exceptions."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


class StripeError(Exception):
    """Raised by a handler to answer with Stripe's error body instead of data."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://docs.stripe.com/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def no_such(what: str, oid: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {what}: '{oid}'", code="resource_missing", param=param)


_TYPE_BY_STATUS = {402: "card_error", 500: "api_error", 502: "api_error", 503: "api_error", 504: "api_error"}
_CODE_BY_STATUS = {409: "lock_timeout", 429: "rate_limit"}


def error_response(status: int, message: str, code: str = "") -> Response:
    """The `EmulatorControl` hook: injected faults and the rate limit answer in Stripe's shape.

    A 429 carries `code=rate_limit` as Stripe's does; a 409 is a lock conflict (`lock_timeout`); 5xx are `api_error`.
    """
    if not code or code == "injected_fault":
        code = _CODE_BY_STATUS.get(status, "")
    return StripeError(
        status, message, type=_TYPE_BY_STATUS.get(status, "invalid_request_error"), code=code or None
    ).response()
