"""Billing credit grants, the credit balance summary and the ledger of credit balance transactions.

Ledger balance = granted less applied, for grants in effect and not voided; available balance leaves out grants that
have expired (their remainder is "expired credits not yet booked" until Stripe books the expiry), as Stripe's
credit balance summary documents.
"""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall, as_int, metadata_update
from .credit_application import money, remaining
from .errors import StripeError
from .listing import page
from .object_shapes import shaped


def create_grant(call: ApiCall) -> dict[str, Any]:
    state = call.state
    params = call.params
    customer = state.get("customer", params.get("customer"), "customer")
    amount = params["amount"]
    if amount.get("type") != "monetary" or not amount.get("monetary"):
        raise StripeError(400, "Only monetary credit grants are supported.", param="amount[type]")
    value = int(amount["monetary"]["value"])
    if value <= 0:
        raise StripeError(400, "The amount must be positive.", param="amount[monetary][value]")
    scope = params["applicability_config"]["scope"]
    if scope.get("prices"):
        for index, ref in enumerate(scope["prices"]):
            price = state.get("price", ref["id"], f"applicability_config[scope][prices][{index}][id]")
            if not (price.get("recurring") or {}).get("meter"):
                raise StripeError(
                    400,
                    "Credit grants only apply to metered prices.",
                    param=f"applicability_config[scope][prices][{index}][id]",
                )
        scope_out: dict[str, Any] = {"prices": [{"id": p["id"]} for p in scope["prices"]], "price_type": None}
    elif scope.get("price_type") == "metered":
        scope_out = {"price_type": "metered", "prices": None}
    else:
        raise StripeError(
            400, "Set applicability_config[scope][price_type]=metered or prices.", param="applicability_config"
        )
    priority = as_int(params.get("priority"))
    if priority is not None and not 0 <= priority <= 100:
        raise StripeError(400, "priority must be between 0 and 100.", param="priority")
    now = state.now_for(customer["id"])
    effective_at = as_int(params.get("effective_at"))
    expires_at = as_int(params.get("expires_at"))
    if expires_at is not None and expires_at <= (effective_at or now):
        raise StripeError(400, "expires_at must be after effective_at.", param="expires_at")
    currency = str(amount["monetary"]["currency"]).lower()
    grant = shaped(
        "billing.credit_grant",
        id=state.new_id("credgr"),
        amount=money(value, currency),
        applicability_config={"scope": scope_out},
        category=params["category"],
        created=now,
        updated=now,
        customer=customer["id"],
        effective_at=effective_at if effective_at is not None else now,
        expires_at=expires_at,
        metadata=metadata_update({}, params.get("metadata")),
        name=params.get("name"),
        priority=priority if priority is not None else 50,
        test_clock=customer.get("test_clock"),
        voided_at=None,
    )
    state.put(grant)
    granted = shaped(
        "billing.credit_balance_transaction",
        id=state.new_id("cbtxn"),
        created=now,
        effective_at=grant["effective_at"],
        credit_grant=grant["id"],
        test_clock=grant["test_clock"],
        type="credit",
        debit=None,
        credit={"amount": money(value, currency), "type": "credits_granted"},
    )
    granted["_value"] = value
    granted["_customer"] = customer["id"]
    state.put(granted)
    return grant


def retrieve_grant(call: ApiCall) -> dict[str, Any]:
    return call.state.get("billing.credit_grant", call.path["id"])


def update_grant(call: ApiCall) -> dict[str, Any]:
    grant = dict(call.state.get("billing.credit_grant", call.path["id"]))
    if "expires_at" in call.params:
        grant["expires_at"] = as_int(call.params["expires_at"])
    grant["metadata"] = metadata_update(grant["metadata"], call.get("metadata"))
    grant["updated"] = call.state.now_for(grant["customer"])
    return call.state.put(grant)


def void_grant(call: ApiCall) -> dict[str, Any]:
    grant = dict(call.state.get("billing.credit_grant", call.path["id"]))
    if grant["voided_at"] is not None:
        raise StripeError(400, f"The credit grant {grant['id']} is already voided.")
    now = call.state.now_for(grant["customer"])
    grant.update(voided_at=now, updated=now)
    return call.state.put(grant)


def expire_grant(call: ApiCall) -> dict[str, Any]:
    grant = dict(call.state.get("billing.credit_grant", call.path["id"]))
    now = call.state.now_for(grant["customer"])
    grant.update(expires_at=now, updated=now)
    return call.state.put(grant)


def list_grants(call: ApiCall) -> dict[str, Any]:
    if call.get("customer"):
        items = list(reversed(call.state.owned_by("billing.credit_grant", call.get("customer"))))
    else:
        items = list(reversed(call.state.all("billing.credit_grant")))
    return page(items, call.params, "/v1/billing/credit_grants")


def _grants_for_filter(call: ApiCall, customer_id: str) -> list[dict[str, Any]]:
    given = call.params["filter"]
    grants = call.state.owned_by("billing.credit_grant", customer_id)
    if given.get("type") == "credit_grant":
        grant = call.state.get("billing.credit_grant", given.get("credit_grant") or "", "filter[credit_grant]")
        return [g for g in grants if g["id"] == grant["id"]]
    scope = given.get("applicability_scope") or {}
    if scope.get("prices"):
        wanted = {p["id"] for p in scope["prices"]}
        return [
            g
            for g in grants
            if g["applicability_config"]["scope"].get("price_type") == "metered"
            or wanted & {p["id"] for p in g["applicability_config"]["scope"].get("prices") or []}
        ]
    return grants


def balance_summary(call: ApiCall) -> dict[str, Any]:
    state = call.state
    customer = state.get("customer", call.params.get("customer"), "customer")
    now = state.now_for(customer["id"])
    ledger: dict[str, int] = {}
    available: dict[str, int] = {}
    for grant in _grants_for_filter(call, customer["id"]):
        currency = grant["amount"]["monetary"]["currency"]
        ledger.setdefault(currency, 0)
        available.setdefault(currency, 0)
        if grant["voided_at"] is not None or grant["effective_at"] > now:
            continue
        left = remaining(state, grant)
        ledger[currency] += left
        if grant["expires_at"] is None or now < grant["expires_at"]:
            available[currency] += left
    return shaped(
        "billing.credit_balance_summary",
        customer=customer["id"],
        balances=[
            {"available_balance": money(available[c], c), "ledger_balance": money(ledger[c], c)} for c in sorted(ledger)
        ],
    )


def list_transactions(call: ApiCall) -> dict[str, Any]:
    customer = call.state.get("customer", call.params.get("customer"), "customer")
    grants = call.state.owned_by("billing.credit_grant", customer["id"])
    items = [t for g in grants for t in call.state.owned_by("billing.credit_balance_transaction", g["id"])]
    items.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
    if call.get("credit_grant"):
        items = [t for t in items if t["credit_grant"] == call.get("credit_grant")]
    return page([_public(t) for t in items], call.params, "/v1/billing/credit_balance_transactions")


def retrieve_transaction(call: ApiCall) -> dict[str, Any]:
    return _public(call.state.get("billing.credit_balance_transaction", call.path["id"]))


def _public(transaction: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in transaction.items() if not k.startswith("_")}
