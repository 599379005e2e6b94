"""Invoices the billing engine issued: list with filters, retrieve, lines; `create_preview` for what comes next.
`GET /v1/invoices/upcoming` was removed in 2025-03-31.basil and answers 404 like any unknown URL."""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall
from .errors import StripeError
from .listing import created_filter, page
from .rendering import render
from .state import public


def upcoming_removed(call: ApiCall) -> dict[str, Any]:
    raise StripeError(404, f"Unrecognized request URL (GET: {call.url}).")


def list_invoices(call: ApiCall) -> dict[str, Any]:
    params = call.params
    if params.get("customer"):
        items = list(reversed(call.state.owned_by("invoice", params["customer"])))
    else:
        items = list(reversed(call.state.all("invoice")))
    if params.get("subscription"):
        items = [
            i
            for i in items
            if i["parent"] is not None and i["parent"]["subscription_details"]["subscription"] == params["subscription"]
        ]
    if params.get("status"):
        items = [i for i in items if i["status"] == params["status"]]
    if params.get("collection_method"):
        items = [i for i in items if i["collection_method"] == params["collection_method"]]
    items = created_filter(items, params.get("created"))
    items = created_filter(items, params.get("due_date"), field="due_date")
    return page([render(call.state, i) for i in items], params, "/v1/invoices")


def retrieve_invoice(call: ApiCall) -> dict[str, Any]:
    return render(call.state, call.state.get("invoice", call.path["invoice"], "invoice"))


def list_lines(call: ApiCall) -> dict[str, Any]:
    invoice = call.state.get("invoice", call.path["invoice"], "invoice")
    return page([public(line) for line in invoice["_lines"]], call.params, call.url)


def create_preview(call: ApiCall) -> dict[str, Any]:
    state = call.state
    sub_id = call.get("subscription")
    if not sub_id:
        raise StripeError(400, "The emulator previews subscription invoices: pass subscription.", param="subscription")
    sub = state.get("subscription", sub_id, "subscription")
    if call.get("customer") and call.get("customer") != sub["customer"]:
        raise StripeError(400, "The subscription belongs to another customer.", param="customer")
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise StripeError(400, "No upcoming invoices for a canceled subscription.", code="invoice_upcoming_none")
    invoice = call.engine.preview(sub)
    return render(state, invoice)
