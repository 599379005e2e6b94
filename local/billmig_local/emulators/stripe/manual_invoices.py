"""One-off invoices: invoice items, then a draft invoice, finalize and pay, as Stripe's invoicing API has them.

What another billing system (Metronome delivering its invoices, or charging an auto-recharge) writes into Stripe:
`billing_reason=manual`, no `parent`. Pending items join an invoice created with
`pending_invoice_items_behavior=include` (the default is `exclude`). Finalizing a `charge_automatically` invoice
with `auto_advance` attempts the payment at once (Stripe does it about an hour later); a test card such as
`pm_card_chargeDeclined` declines and the invoice stays open; `pay` tries again.
"""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall, as_int, metadata_update
from .errors import StripeError
from .listing import created_filter, page
from .object_shapes import shaped
from .rendering import render
from .state import public


def create_invoice_item(call: ApiCall) -> dict[str, Any]:
    state = call.state
    customer = state.get("customer", call.get("customer"), "customer")
    amount = as_int(call.get("amount"))
    if amount is None:
        raise StripeError(400, "Missing required param: amount.", code="parameter_missing", param="amount")
    now = state.now_for(customer["id"])
    period = call.get("period") or {}
    item = shaped(
        "invoiceitem",
        id=state.new_id("ii"),
        amount=amount,
        currency=call.get("currency") or customer.get("currency") or "usd",
        customer=customer["id"],
        date=now,
        description=call.get("description"),
        discountable=True,
        discounts=[],
        invoice=None,
        metadata=metadata_update({}, call.get("metadata")),
        period={"start": as_int(period.get("start")) or now, "end": as_int(period.get("end")) or now},
        proration=False,
        quantity=1,
        quantity_decimal="1",
        tax_rates=[],
        test_clock=customer.get("test_clock"),
        parent=None,
        pricing=None,
        net_amount=amount,
    )
    item["_customer"] = customer["id"]
    if call.get("invoice"):
        invoice = dict(state.get("invoice", call.get("invoice"), "invoice"))
        if invoice["customer"] != customer["id"]:
            raise StripeError(400, "The invoice belongs to another customer.", param="invoice")
        _attach(call, invoice, item)
        state.put(invoice)
    state.put(item)
    return public(item)


def _attach(call: ApiCall, invoice: dict[str, Any], item: dict[str, Any]) -> None:
    if invoice["status"] != "draft":
        raise StripeError(400, "Invoice items can only be added to a draft invoice.", param="invoice")
    item["invoice"] = invoice["id"]
    line = shaped(
        "line_item",
        id=call.state.new_id("il"),
        amount=item["amount"],
        subtotal=item["amount"],
        currency=item["currency"],
        description=item["description"],
        discount_amounts=[],
        discountable=True,
        discounts=[],
        invoice=invoice["id"],
        metadata=dict(item["metadata"]),
        period=dict(item["period"]),
        quantity=1,
        quantity_decimal="1",
        subscription=None,
        pretax_credit_amounts=[],
        taxes=[],
        parent={
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        },
        pricing=None,
    )
    invoice["_lines"] = [*invoice["_lines"], line]
    call.engine.totals(invoice)


def create_invoice(call: ApiCall) -> dict[str, Any]:
    state = call.state
    customer = state.get("customer", call.get("customer"), "customer")
    now = state.now_for(customer["id"])
    method = call.get("collection_method") or "charge_automatically"
    invoice = call.engine.new_invoice(
        customer,
        reason="manual",
        lines=[],
        period=(now, now),
        at=now,
        collection_method=method,
        currency=call.get("currency") or customer.get("currency") or "usd",
        parent=None,
        default_payment_method=call.get("default_payment_method"),
        days_until_due=as_int(call.get("days_until_due")),
    )
    invoice["auto_advance"] = bool(call.get("auto_advance")) if "auto_advance" in call.params else True
    invoice["description"] = call.get("description")
    invoice["metadata"] = metadata_update({}, call.get("metadata"))
    if (call.get("pending_invoice_items_behavior") or "exclude") == "include":
        for stored in state.all("invoiceitem"):
            if stored["customer"] == customer["id"] and stored["invoice"] is None:
                item = dict(stored)
                _attach(call, invoice, item)
                state.put(item)
    state.put(invoice)
    return render(state, invoice)


def finalize_invoice(call: ApiCall) -> dict[str, Any]:
    state = call.state
    invoice = dict(state.get("invoice", call.path["invoice"], "invoice"))
    if invoice["status"] != "draft":
        raise StripeError(400, f"This invoice is already finalized: {invoice['id']}.", param="invoice")
    if "auto_advance" in call.params:
        invoice["auto_advance"] = bool(call.get("auto_advance"))
    at = state.now_for(invoice["customer"])
    call.engine.finalize_invoice(invoice, at, pay=bool(invoice["auto_advance"]))
    return render(state, state.get("invoice", invoice["id"]))


def pay_invoice(call: ApiCall) -> dict[str, Any]:
    state = call.state
    invoice = dict(state.get("invoice", call.path["invoice"], "invoice"))
    if invoice["status"] == "paid":
        raise StripeError(400, "Invoice is already paid.")
    if invoice["status"] != "open":
        raise StripeError(400, f"You can only pay an open invoice; this one is {invoice['status']}.")
    at = state.now_for(invoice["customer"])
    outcome = call.engine.attempt_payment(invoice, at, default_payment_method=call.get("payment_method"))
    if outcome == "declined":
        raise StripeError(402, "Your card was declined.", type="card_error", code="card_declined")
    if outcome == "no_payment_method":
        raise StripeError(
            400,
            "This customer has no attached payment source or default payment method. "
            "Please consider adding a default payment method.",
        )
    return render(state, state.get("invoice", invoice["id"]))


def retrieve_invoice_item(call: ApiCall) -> dict[str, Any]:
    return public(call.state.get("invoiceitem", call.path["invoiceitem"], "invoiceitem"))


def list_invoice_items(call: ApiCall) -> dict[str, Any]:
    items = list(reversed(call.state.all("invoiceitem")))
    if call.get("customer"):
        items = [i for i in items if i["customer"] == call.get("customer")]
    if call.get("invoice"):
        items = [i for i in items if i["invoice"] == call.get("invoice")]
    if call.get("pending") is not None:
        pending = str(call.get("pending")).lower() in ("true", "1")
        items = [i for i in items if (i["invoice"] is None) == pending]
    items = created_filter(items, call.get("created"), field="date")
    return page([public(i) for i in items], call.params, "/v1/invoiceitems")
