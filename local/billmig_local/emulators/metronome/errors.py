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


def not_found(what: str, oid: object) -> ApiError:
    return ApiError(404, f"{what} not found: {oid}")


UNIQUENESS_KEY_USED = "This uniqueness key has already been used."
