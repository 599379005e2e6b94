"""What a quantity costs under a Stripe price, in integer cents.

Quantities and unit amounts are exact `Decimal`s (`unit_amount_decimal` may carry sub-cent precision); a line's
amount is rounded once, to the nearest whole cent with halves up, as Stripe's decimal-amounts guide shows
(0.05 x 30 = 1.5 -> 2 cents; https://docs.stripe.com/billing/subscriptions/decimal-amounts#rounding).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any


def cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def transformed(price: dict[str, Any], quantity: Decimal) -> Decimal:
    """`transform_quantity`: divide, then round up or down to a whole unit."""
    transform = price.get("transform_quantity")
    if not transform:
        return quantity
    divided = quantity / Decimal(int(transform["divide_by"]))
    return divided.quantize(Decimal(1), rounding=ROUND_CEILING if transform["round"] == "up" else ROUND_FLOOR)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _tier_unit(tier: dict[str, Any]) -> Decimal:
    return _decimal(
        tier.get("unit_amount_decimal") if tier.get("unit_amount_decimal") is not None else tier.get("unit_amount")
    )


def _tier_flat(tier: dict[str, Any]) -> Decimal:
    return _decimal(
        tier.get("flat_amount_decimal") if tier.get("flat_amount_decimal") is not None else tier.get("flat_amount")
    )


def exact_amount(price: dict[str, Any], quantity: Decimal) -> Decimal:
    """Unrounded amount in cents for `quantity` units (after `transform_quantity`)."""
    units = transformed(price, quantity)
    if price["billing_scheme"] == "per_unit":
        return units * _decimal(price.get("unit_amount_decimal"))
    tiers = price["_tiers"]
    if units <= 0:
        return Decimal(0)
    if price["tiers_mode"] == "volume":
        for tier in tiers:
            if tier["up_to"] is None or units <= tier["up_to"]:
                return units * _tier_unit(tier) + _tier_flat(tier)
        raise ValueError("tiers must end with up_to=inf")
    total = Decimal(0)
    floor = Decimal(0)
    for tier in tiers:
        ceiling = Decimal(tier["up_to"]) if tier["up_to"] is not None else None
        in_tier = (min(units, ceiling) if ceiling is not None else units) - floor
        if in_tier > 0:
            total += in_tier * _tier_unit(tier) + _tier_flat(tier)
        if ceiling is None or units <= ceiling:
            break
        floor = ceiling
    return total


def amount(price: dict[str, Any], quantity: Decimal) -> int:
    return cents(exact_amount(price, quantity))


def unit_amount_decimal(price: dict[str, Any]) -> str | None:
    return price.get("unit_amount_decimal") if price["billing_scheme"] == "per_unit" else None
