"""Stripe list envelopes: `{object: "list", data, has_more, url}`, `limit` 1-100, `starting_after`/`ending_before`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import StripeError

Created = Callable[[dict[str, Any]], Any]


def created_filter(items: list[dict[str, Any]], spec: Any, field: str = "created") -> list[dict[str, Any]]:
    """`created=123` or `created[gte|gt|lte|lt]=...` as Stripe's range filters."""
    if spec is None or spec == "":
        return items
    if not isinstance(spec, dict):
        return [i for i in items if i.get(field) == int(spec)]
    tests = {
        "gte": lambda v, b: v >= b,
        "gt": lambda v, b: v > b,
        "lte": lambda v, b: v <= b,
        "lt": lambda v, b: v < b,
    }
    kept = items
    for op, bound in spec.items():
        kept = [i for i in kept if i.get(field) is not None and tests[op](i[field], int(bound))]
    return kept


def page(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """`items` newest first, as Stripe lists; cursors are object ids."""
    limit = int(params.get("limit") or 10)
    if not 1 <= limit <= 100:
        raise StripeError(
            400, "Invalid limit: must be between 1 and 100", code="parameter_invalid_integer", param="limit"
        )
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise StripeError(400, f"No such object: '{after}'", code="resource_missing", param="starting_after")
        start = ids.index(after) + 1
        chunk = items[start : start + limit]
        has_more = start + limit < len(items)
    elif before:
        if before not in ids:
            raise StripeError(400, f"No such object: '{before}'", code="resource_missing", param="ending_before")
        end = ids.index(before)
        chunk = items[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        chunk = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": chunk, "has_more": has_more, "url": url}
