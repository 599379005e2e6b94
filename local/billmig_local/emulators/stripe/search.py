"""Stripe's Search API for customers, subscriptions and prices (what a migration uses to find its own objects, e.g.
`metadata['internal_customer_id']:'acct_000123'`).

The query language subset: clauses `field:value` (exact), `field~value` (substring, at least 3 characters),
`field>n` / `<` / `>=` / `<=` on numbers, `-` to negate, `metadata['key']` (or `metadata["key"]`), `null` for a
missing value, joined by `AND` or by `OR` (not both, as in Stripe). Results are newest first; `page` is the
`next_page` token of the previous answer. Unlike Stripe's (seconds behind), the index is always current.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .api_call import ApiCall
from .errors import StripeError
from .rendering import render

_CLAUSE = re.compile(
    r"""^\s*(?P<neg>-)?(?P<field>[a-z_]+)(?:\[(?P<q>['"])(?P<key>[^'"]+)(?P=q)\])?\s*"""
    r"""(?P<op>>=|<=|:|~|>|<)\s*(?P<value>"[^"]*"|'[^']*'|[^\s]+)\s*$"""
)
FIELDS = {
    "customer": {"email", "name", "phone", "metadata", "created", "test_clock"},
    "subscription": {"status", "metadata", "created", "customer"},
    "price": {"active", "currency", "lookup_key", "product", "type", "metadata", "created"},
}


def _parse(query: str, kind: str) -> tuple[str, list[Callable[[dict[str, Any]], bool]]]:
    has_and = re.search(r"\sAND\s", query) is not None
    has_or = re.search(r"\sOR\s", query) is not None
    if has_and and has_or:
        raise StripeError(400, "A search query cannot mix AND and OR.", param="query")
    joiner = "OR" if has_or else "AND"
    tests = [_clause(text, kind) for text in re.split(rf"\s{joiner}\s", query.strip()) if text.strip()]
    if not tests:
        raise StripeError(400, "The search query is empty.", param="query")
    return joiner, tests


def _clause(text: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    match = _CLAUSE.match(text)
    if match is None:
        raise StripeError(400, f"Could not parse the search clause: {text.strip()}", param="query")
    field, key, op = match["field"], match["key"], match["op"]
    if field not in FIELDS[kind] or (field == "metadata") != (key is not None):
        raise StripeError(400, f"Field '{field}' is not searchable on {kind}.", param="query")
    raw = match["value"]
    quoted = raw[:1] in ("'", '"')
    value: Any = raw[1:-1] if quoted else raw
    if not quoted and value == "null":
        value = None
    if op == "~" and (value is None or len(value) < 3):
        raise StripeError(400, "A substring search needs at least 3 characters.", param="query")

    def read(obj: dict[str, Any]) -> Any:
        found = (obj.get("metadata") or {}).get(key) if key else obj.get(field)
        if isinstance(found, bool):
            return "true" if found else "false"
        return found

    def test(obj: dict[str, Any]) -> bool:
        found = read(obj)
        if op == ":":
            result = found is None if value is None else found is not None and str(found) == str(value)
        elif op == "~":
            result = found is not None and str(value).lower() in str(found).lower()
        else:
            if found is None:
                return False
            left, right = float(found), float(value)
            result = {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
        return not result if match["neg"] else result

    return test


def search(call: ApiCall, kind: str) -> dict[str, Any]:
    joiner, tests = _parse(call.params["query"], kind)
    combine = all if joiner == "AND" else any
    items = [o for o in reversed(call.state.all(kind)) if not o.get("_deleted") and combine(t(o) for t in tests)]
    limit = int(call.params.get("limit") or 10)
    if not 1 <= limit <= 100:
        raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
    page = call.params.get("page")
    try:
        start = int(page) if page else 0
    except ValueError as exc:
        raise StripeError(400, f"Invalid page token: {page}", param="page") from exc
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return {
        "object": "search_result",
        "data": [render(call.state, o) for o in chunk],
        "has_more": more,
        "next_page": str(start + limit) if more else None,
        "url": call.url,
    }


def search_customers(call: ApiCall) -> dict[str, Any]:
    return search(call, "customer")


def search_subscriptions(call: ApiCall) -> dict[str, Any]:
    return search(call, "subscription")


def search_prices(call: ApiCall) -> dict[str, Any]:
    return search(call, "price")
