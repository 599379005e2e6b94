"""Customers and the minimal PaymentMethod a customer needs as its default (test tokens like `pm_card_visa`)."""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall, metadata_update
from .errors import StripeError
from .listing import created_filter, page
from .object_shapes import shaped
from .rendering import render

_TEST_CARDS = {"visa": "4242", "mastercard": "4444", "amex": "8431", "visa_debit": "5556"}


_DECLINING_CARDS = {"chargeDeclined": "0002", "chargeCustomerFail": "0341"}
"""Stripe's test cards that attach but decline every charge."""


def _new_payment_method(call: ApiCall, token: str, customer_id: str | None) -> dict[str, Any]:
    brand = token.removeprefix("pm_card_") if token.startswith("pm_card_") else "visa"
    declines = brand in _DECLINING_CARDS
    if declines:
        brand, last4 = "visa", _DECLINING_CARDS[brand]
    state = call.state
    last4 = last4 if declines else _TEST_CARDS.get(brand, "4242")
    card = {"brand": brand.split("_")[0], "last4": last4, "exp_month": 12, "exp_year": 2034}
    card |= {"country": "US", "funding": "credit", "display_brand": brand.split("_")[0]}
    method = shaped(
        "payment_method",
        id=state.new_id("pm"),
        created=state.now_for(customer_id),
        customer=customer_id,
        type="card",
        card=card,
        allow_redisplay="unspecified",
        billing_details={"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
    )
    if declines:
        method["_declines"] = True
    return state.put(method)


def _payment_method(call: ApiCall, ref: str, customer_id: str, param: str) -> str:
    """A `pm_...` id of this customer, or a test token (`pm_card_visa`) that becomes a new attached method."""
    if ref.startswith("pm_card_") or ref in ("tok_visa", "pm_test"):
        return str(_new_payment_method(call, ref, customer_id)["id"])
    method = call.state.get("payment_method", ref, param)
    if method["customer"] != customer_id:
        raise StripeError(
            400, f"The payment method {ref} must be attached to customer {customer_id} first.", param=param
        )
    return ref


def _apply_payment_settings(call: ApiCall, customer: dict[str, Any]) -> None:
    attached = None
    if call.get("payment_method"):
        attached = _payment_method(call, call.get("payment_method"), customer["id"], "payment_method")
    settings = call.get("invoice_settings") or {}
    default = settings.get("default_payment_method")
    if default is not None:
        if default == "":
            chosen = None
        elif default == call.get("payment_method") and attached:
            chosen = attached
        else:
            chosen = _payment_method(call, default, customer["id"], "invoice_settings[default_payment_method]")
        customer["invoice_settings"] = {**(customer["invoice_settings"] or {}), "default_payment_method": chosen}


def create_customer(call: ApiCall) -> dict[str, Any]:
    state = call.state
    clock_id = call.get("test_clock")
    if clock_id:
        clock = state.get("test_helpers.test_clock", clock_id, "test_clock")
        attached = state.owned_by("customer", clock["id"])
        if len(attached) >= 3:
            raise StripeError(400, "A test clock can have at most 3 customers.", param="test_clock")
    customer = shaped(
        "customer",
        id=state.new_id("cus"),
        created=state.now_for_clock(clock_id),
        email=call.get("email"),
        name=call.get("name"),
        description=call.get("description"),
        phone=call.get("phone"),
        metadata=metadata_update({}, call.get("metadata")),
        balance=int(call.get("balance") or 0),
        currency=None,
        delinquent=False,
        invoice_prefix=(call.get("invoice_prefix") or "EMU") + "",
        invoice_settings={
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        next_invoice_sequence=1,
        preferred_locales=call.get("preferred_locales") or [],
        tax_exempt="none",
        test_clock=clock_id,
        shipping=None,
        address=None,
        discount=None,
        default_source=None,
    )
    _apply_payment_settings(call, customer)
    return render(state, state.put(customer))


def retrieve_customer(call: ApiCall) -> dict[str, Any]:
    customer = call.state.get("customer", call.path["customer"], "customer")
    if customer.get("_deleted"):
        return {"id": customer["id"], "object": "customer", "deleted": True}
    return render(call.state, customer)


def update_customer(call: ApiCall) -> dict[str, Any]:
    customer = dict(call.state.get("customer", call.path["customer"], "customer"))
    for key in ("email", "name", "description", "phone"):
        if key in call.params:
            customer[key] = call.params[key] or None
    customer["metadata"] = metadata_update(customer["metadata"], call.get("metadata"))
    _apply_payment_settings(call, customer)
    return render(call.state, call.state.put(customer))


def delete_customer(call: ApiCall) -> dict[str, Any]:
    customer = dict(call.state.get("customer", call.path["customer"], "customer"))
    customer["_deleted"] = True
    call.state.put(customer)
    for sub in call.state.owned_by("subscription", customer["id"]):
        if sub["status"] not in ("canceled", "incomplete_expired"):
            call.engine.end_subscription(sub["id"], call.state.now_for(customer["id"]), invoice_now=False)
    return {"id": customer["id"], "object": "customer", "deleted": True}


def list_customers(call: ApiCall) -> dict[str, Any]:
    items = [c for c in reversed(call.state.all("customer")) if not c.get("_deleted")]
    if call.get("email"):
        items = [c for c in items if c.get("email") == call.get("email")]
    if call.get("test_clock"):
        items = [c for c in items if c.get("test_clock") == call.get("test_clock")]
    items = created_filter(items, call.get("created"))
    return page([render(call.state, c) for c in items], call.params, "/v1/customers")


def create_payment_method(call: ApiCall) -> dict[str, Any]:
    card = call.get("card") or {}
    token = card.get("token") if isinstance(card, dict) else None
    if call.get("type") != "card":
        raise StripeError(400, "The emulator only creates card payment methods.", param="type")
    return render(call.state, _new_payment_method(call, token or "pm_card_visa", None))


def retrieve_payment_method(call: ApiCall) -> dict[str, Any]:
    ref = call.path["payment_method"]
    if ref.startswith("pm_card_"):
        return render(call.state, _new_payment_method(call, ref, None))
    return render(call.state, call.state.get("payment_method", ref, "payment_method"))


def attach_payment_method(call: ApiCall) -> dict[str, Any]:
    customer = call.state.get("customer", call.get("customer"), "customer")
    ref = call.path["payment_method"]
    if ref.startswith("pm_card_"):
        return render(call.state, _new_payment_method(call, ref, customer["id"]))
    method = dict(call.state.get("payment_method", ref, "payment_method"))
    method["customer"] = customer["id"]
    return render(call.state, call.state.put(method))


def list_customer_payment_methods(call: ApiCall) -> dict[str, Any]:
    customer = call.state.get("customer", call.path["customer"], "customer")
    items = [m for m in reversed(call.state.all("payment_method")) if m["customer"] == customer["id"]]
    return page([render(call.state, m) for m in items], call.params, call.url)
