"""Customer invoices: USAGE per statement period and SCHEDULED from prepaid commits, as the engine computes them;
and previewEvents, the open periods' draft invoices as they would be with some events added (nothing is stored).
"""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall
from .customers import get_customer
from .errors import ApiError, not_found
from .pagination import page
from .wire_format import format_time, parse_time, public


def _skip_zero(invoice: dict[str, Any], skip: bool) -> dict[str, Any]:
    data: dict[str, Any] = public(invoice)
    if skip:
        data["line_items"] = [li for li in data["line_items"] if li.get("quantity", 1) != 0]
    return data


def list_invoices(call: ApiCall) -> Any:
    customer = get_customer(call, call.path["customer_id"])
    invoices = call.engine.bill_customer(customer["id"]).invoices
    query = call.query
    if query.get("contract_id"):
        invoices = [i for i in invoices if i.get("contract_id") == query["contract_id"]]
    if query.get("status"):
        invoices = [i for i in invoices if i["status"] == query["status"].upper()]
    if query.get("type"):
        invoices = [i for i in invoices if i["type"] == query["type"].upper()]
    if query.get("starting_on"):
        at = parse_time(query["starting_on"], "starting_on")
        invoices = [i for i in invoices if parse_time(i.get("end_timestamp") or i["issued_at"]) > at]
    if query.get("ending_before"):
        at = parse_time(query["ending_before"], "ending_before")
        invoices = [i for i in invoices if parse_time(i.get("start_timestamp") or i["issued_at"]) < at]
    sort = (query.get("sort") or "date_asc").lower()
    if sort not in ("date_asc", "date_desc"):
        raise ApiError(400, "sort: must be date_asc or date_desc")
    if sort == "date_desc":
        invoices = list(reversed(invoices))
    skip = query.get("skip_zero_qty_line_items", "false").lower() == "true"
    chunk, next_page = page(invoices, query.get("limit"), query.get("next_page"), default=25)
    return {"data": [_skip_zero(i, skip) for i in chunk], "next_page": next_page}


def retrieve_invoice(call: ApiCall) -> Any:
    customer = get_customer(call, call.path["customer_id"])
    for invoice in call.engine.bill_customer(customer["id"]).invoices:
        if invoice["id"] == call.path["invoice_id"]:
            skip = call.query.get("skip_zero_qty_line_items", "false").lower() == "true"
            return {"data": _skip_zero(invoice, skip)}
    raise not_found("invoice", call.path["invoice_id"])


def preview_events(call: ApiCall) -> Any:
    customer = get_customer(call, call.path["customer_id"])
    body = call.body
    mode = body.get("mode") or "replace"
    now = call.now()
    preview: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, event in enumerate(body["events"]):
        transaction_id = event.get("transaction_id") or f"preview-{index}"
        if transaction_id in seen:
            raise ApiError(400, f"events.{index}.transaction_id: duplicate transaction_id {transaction_id!r}")
        seen.add(transaction_id)
        if mode == "merge" and call.store.get("event", transaction_id) is not None:
            continue  # already ingested: deduplicated against the customer's history
        ts = parse_time(event["timestamp"], f"events.{index}.timestamp") if event.get("timestamp") else now
        preview.append(
            {
                "transaction_id": transaction_id,
                "customer_id": customer["id"],
                "event_type": event["event_type"],
                "timestamp": format_time(ts),
                "properties": event.get("properties") or {},
                "_ts": ts,
            }
        )
    billing = call.engine.bill_customer(customer["id"], preview=preview, replace=mode == "replace")
    drafts = [i for i in billing.invoices if i["type"] == "USAGE" and i["status"] == "DRAFT"]
    skip = bool(body.get("skip_zero_qty_line_items"))
    return {"data": [_skip_zero(i, skip) for i in drafts]}
