"""Rate-card rates in effect for a product at pricing-group values, and what a quantity costs under them.

No rate for the exact (case-sensitive) pricing-group values means the usage carries no charge: Metronome's
"common mistake" that the migration must be able to see in events search and usage groups.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .wire_format import to_decimal


def rate_for(
    rates: list[dict[str, Any]], product_id: str, values: dict[str, str | None] | None, at: float
) -> dict[str, Any] | None:
    """The rate for `product_id` at exactly `values`, in effect at `at` (latest start wins)."""
    best: dict[str, Any] | None = None
    for rate in rates:
        if rate["product_id"] != product_id or not rate.get("entitled", True):
            continue
        if rate["_starting_ts"] > at or (rate.get("_ending_ts") is not None and rate["_ending_ts"] <= at):
            continue
        if (rate.get("pricing_group_values") or None) != (values or None):
            continue
        if best is None or rate["_starting_ts"] >= best["_starting_ts"]:
            best = rate
    return best


def charge(rate: dict[str, Any], quantity: Decimal) -> Decimal:
    """Exact (unrounded) cents for `quantity` under a FLAT or graduated TIERED rate."""
    rate_type = rate.get("rate_type", "FLAT").upper()
    if rate_type == "TIERED":
        remaining = quantity
        total = Decimal(0)
        for tier in rate.get("tiers") or []:
            size = tier.get("size")
            take = remaining if size is None else min(remaining, to_decimal(size))
            total += take * to_decimal(tier["price"])
            remaining -= take
            if remaining <= 0:
                break
        return total
    if rate_type == "FLAT":
        return quantity * to_decimal(rate.get("price", 0))
    return Decimal(0)  # PERCENTAGE/SUBSCRIPTION/CUSTOM rates are not emulated for usage
