"""Stored objects as Stripe returns them: bookkeeping keys dropped, nested lists filled in, `expand[]` applied."""

from __future__ import annotations

from typing import Any

from .errors import StripeError
from .state import KIND_BY_PREFIX, StripeState, public


def render(state: StripeState, obj: dict[str, Any]) -> dict[str, Any]:
    body = public(obj)
    kind = obj["object"]
    if kind == "subscription":
        body["items"] = {
            "object": "list",
            "data": [render(state, state.get("subscription_item", item_id)) for item_id in obj["_items"]],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={obj['id']}",
        }
    elif kind == "subscription_item":
        body["price"] = render(state, state.get("price", obj["price"]))
    elif kind == "invoice":
        body["lines"] = {
            "object": "list",
            "data": [public(line) for line in obj["_lines"]],
            "has_more": False,
            "url": f"/v1/invoices/{obj['id']}/lines",
        }
    return body


def _kind_of(value: str) -> str | None:
    if value.startswith("sub_sched_"):
        return "subscription_schedule"
    prefix = value.split("_", 1)[0]
    return KIND_BY_PREFIX.get(prefix)


def _expand(state: StripeState, node: Any, segments: list[str], full: str) -> None:
    if not segments or not isinstance(node, dict):
        return
    head, rest = segments[0], segments[1:]
    if node.get("object") == "list" and head == "data":
        for item in node["data"]:
            _expand(state, item, rest, full)
        return
    if node.get("object") == "price" and head in ("tiers", "currency_options"):
        if head == "tiers":
            stored = state.get("price", node["id"])
            node["tiers"] = stored.get("_tiers")
        return
    if head not in node:
        raise StripeError(400, f"This property cannot be expanded ({full}).", param="expand")
    value = node[head]
    if isinstance(value, str):
        kind = _kind_of(value)
        if kind is None:
            raise StripeError(400, f"This property cannot be expanded ({full}).", param="expand")
        node[head] = value = render(state, state.get(kind, value))
    if isinstance(value, list):
        for item in value:
            _expand(state, item, rest, full)
    else:
        _expand(state, value, rest, full)


def expand(state: StripeState, body: dict[str, Any], paths: list[str] | None) -> dict[str, Any]:
    for path in paths or []:
        _expand(state, body, path.split("."), path)
    return body
