"""Metronome's cursor pages: `limit` + an opaque `next_page` (or `cursor`) token; null when there is no more."""

from __future__ import annotations

import base64
from typing import Any

from .errors import ApiError


def _decode(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"next_page: invalid cursor {token!r}") from exc


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def page(
    items: list[Any], limit: Any, token: str | None, *, default: int = 100, maximum: int = 100
) -> tuple[list[Any], Any]:
    """One page of `items` and the token for the next one (None on the last page)."""
    try:
        size = int(limit) if limit not in (None, "") else default
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "limit: must be an integer") from exc
    if size < 1 or size > maximum:
        raise ApiError(400, f"limit: must be between 1 and {maximum}")
    start = _decode(token)
    chunk = items[start : start + size]
    return chunk, (_encode(start + size) if start + size < len(items) else None)
