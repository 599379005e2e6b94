"""Billing credits applied when an invoice finalizes, as Stripe's implementation guide describes.

Only lines whose price has a meter are eligible, and only within a grant's scope (`price_type: metered`, or the listed
prices) while `effective_at <= t < expires_at` and not voided. Grants apply in `priority` order (0 first); ties go to
the grant effective earlier, then created earlier, then the smaller id, so the outcome never depends on storage order.
Each (grant, line) application is one debit transaction; the invoice records them in `total_pretax_credit_amounts`
and each line in `pretax_credit_amounts`.
"""

from __future__ import annotations

from typing import Any

from .object_shapes import shaped
from .state import StripeState


def money(value: int, currency: str) -> dict[str, Any]:
    return {"monetary": {"currency": currency, "value": value}, "type": "monetary"}


def grant_in_scope(grant: dict[str, Any], price: dict[str, Any]) -> bool:
    if not (price.get("recurring") or {}).get("meter"):
        return False
    scope = grant["applicability_config"]["scope"]
    if scope.get("prices"):
        return bool(price["id"] in [p["id"] for p in scope["prices"]])
    return bool(scope.get("price_type") == "metered")


def grant_valid_at(grant: dict[str, Any], instant: int) -> bool:
    if grant.get("voided_at") is not None:
        return False
    starts = grant["effective_at"] if grant["effective_at"] is not None else grant["created"]
    return starts <= instant and (grant["expires_at"] is None or instant < grant["expires_at"])


def remaining(state: StripeState, grant: dict[str, Any]) -> int:
    """What is left of the grant: its amount less every debit against it."""
    spent = sum(
        t["_value"] for t in state.owned_by("billing.credit_balance_transaction", grant["id"]) if t["type"] == "debit"
    )
    return int(grant["amount"]["monetary"]["value"]) - int(spent)


def ordered_grants(state: StripeState, customer_id: str, instant: int, currency: str) -> list[dict[str, Any]]:
    grants = [
        g
        for g in state.owned_by("billing.credit_grant", customer_id)
        if g["amount"]["monetary"]["currency"] == currency and grant_valid_at(g, instant)
    ]
    return sorted(
        grants,
        key=lambda g: (
            g["priority"] if g.get("priority") is not None else 50,
            g["effective_at"] if g["effective_at"] is not None else g["created"],
            g["created"],
            g["id"],
        ),
    )


def apply_credits(state: StripeState, invoice: dict[str, Any], instant: int, *, record: bool) -> None:
    """Reduce the invoice's metered lines by the customer's grants; `record=False` for previews (no ledger)."""
    currency = invoice["currency"]
    totals: list[dict[str, Any]] = []
    left = {g["id"]: remaining(state, g) for g in ordered_grants(state, invoice["customer"], instant, currency)}
    grants = ordered_grants(state, invoice["customer"], instant, currency)
    for line in invoice["_lines"]:
        line["pretax_credit_amounts"] = []
    for grant in grants:
        for line in invoice["_lines"]:
            if "_price" not in line:
                continue  # a one-off invoice item has no price, so no meter: grants never cover it
            price = state.get("price", line["_price"])
            credited = sum(c["amount"] for c in line["pretax_credit_amounts"])
            open_amount = line["amount"] - credited
            if open_amount <= 0 or left[grant["id"]] <= 0 or not grant_in_scope(grant, price):
                continue
            applied = min(open_amount, left[grant["id"]])
            left[grant["id"]] -= applied
            transaction_id = None
            if record:
                transaction = shaped(
                    "billing.credit_balance_transaction",
                    id=state.new_id("cbtxn"),
                    created=instant,
                    effective_at=instant,
                    credit_grant=grant["id"],
                    test_clock=grant.get("test_clock"),
                    type="debit",
                    credit=None,
                    debit={
                        "amount": money(applied, currency),
                        "credits_applied": {"invoice": invoice["id"], "invoice_line_item": line["id"]},
                        "type": "credits_applied",
                    },
                )
                transaction["_value"] = applied
                transaction["_customer"] = invoice["customer"]
                state.put(transaction)
                transaction_id = transaction["id"]
            entry = {
                "amount": applied,
                "credit_balance_transaction": transaction_id,
                "discount": None,
                "type": "credit_balance_transaction",
            }
            line["pretax_credit_amounts"].append(entry)
            totals.append(dict(entry))
    invoice["total_pretax_credit_amounts"] = totals
