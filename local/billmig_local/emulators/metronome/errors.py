"""Metronome's error shape: a 4xx/5xx status with `{"message": ...}` (v2 edits also carry a `code`)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """Raised by a handler to answer with Metronome's error body instead of data."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, str]:
        payload = {"message": self.message}
        if self.code:
            payload["code"] = self.code
        return payload


def error_response(status: int, message: str, code: str = "") -> Response:
    """The `EmulatorControl` hook: injected faults and rate limits answer in Metronome's `{"message"}` shape."""
    del code  # Metronome's generic errors carry no code
    return JSONResponse({"message": message}, status_code=status)


_NOT_FOUND_CODES = {"customer": "CustomerNotFound", "contract": "ContractNotFound"}


def not_found(what: str, oid: object) -> ApiError:
    """404 on v1; the v2 contract operations answer 400 with a `code` instead (see `for_version`)."""
    return ApiError(404, f"{what} not found: {oid}", _NOT_FOUND_CODES.get(what))


def for_version(error: ApiError, path: str) -> ApiError:
    """v2 contract operations report a missing customer/contract as 400 `{code, message}`; v1 bodies carry no code."""
    if path.startswith("/v2/"):
        status = 400 if error.status == 404 else error.status
        return ApiError(status, error.message, error.code or "ValidationError")
    return ApiError(error.status, error.message)


UNIQUENESS_KEY_USED = "This uniqueness key has already been used."
