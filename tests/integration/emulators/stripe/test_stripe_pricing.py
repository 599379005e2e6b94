"""Tier arithmetic against a unit-by-unit reference: graduated prices each unit in its own tier, volume prices all
units in the tier the total reaches (flat fees once per tier reached, resp. once)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billmig_local.emulators.stripe.pricing import amount
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def tiered_prices(draw: st.DrawFn) -> dict[str, Any]:
    bounds = sorted(draw(st.sets(st.integers(1, 60), min_size=0, max_size=3)))
    tiers = [
        {
            "up_to": up_to,
            "unit_amount_decimal": str(draw(st.integers(0, 40))),
            "flat_amount_decimal": str(draw(st.sampled_from([0, 0, 5, 100]))),
        }
        for up_to in [*bounds, None]
    ]
    mode = draw(st.sampled_from(["graduated", "volume"]))
    return {"billing_scheme": "tiered", "tiers_mode": mode, "_tiers": tiers, "transform_quantity": None}


def _tier_of(tiers: list[dict[str, Any]], unit: int) -> int:
    return next(i for i, t in enumerate(tiers) if t["up_to"] is None or unit <= t["up_to"])


def _reference(price: dict[str, Any], quantity: int) -> int:
    tiers = price["_tiers"]
    if quantity == 0:
        return 0
    if price["tiers_mode"] == "volume":
        tier = tiers[_tier_of(tiers, quantity)]
        return quantity * int(tier["unit_amount_decimal"]) + int(tier["flat_amount_decimal"])
    reached = {_tier_of(tiers, unit) for unit in range(1, quantity + 1)}
    units = sum(int(tiers[_tier_of(tiers, unit)]["unit_amount_decimal"]) for unit in range(1, quantity + 1))
    return units + sum(int(tiers[i]["flat_amount_decimal"]) for i in reached)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(tiered_prices(), st.integers(0, 150))
def test_tiered_amounts_match_a_unit_by_unit_reference(price: dict[str, Any], quantity: int) -> None:
    assert amount(price, Decimal(quantity)) == _reference(price, quantity)


def test_per_unit_decimal_and_transform_quantity() -> None:
    per_unit = {"billing_scheme": "per_unit", "unit_amount_decimal": "0.05", "transform_quantity": None}
    assert amount(per_unit, Decimal(30)) == 2  # Stripe's own example: 0.05 x 30 = 1.5 -> 2
    assert amount(per_unit, Decimal(29)) == 1  # 1.45 -> 1
    packs = {
        "billing_scheme": "per_unit",
        "unit_amount_decimal": "500",
        "transform_quantity": {"divide_by": 10, "round": "down"},
    }
    assert amount(packs, Decimal(19)) == 500
