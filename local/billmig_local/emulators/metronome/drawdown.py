"""Which commit or credit pays for a charge, by Metronome's prioritization rules.

Order (docs.metronome.com/pricing-packaging/apply-credits-commits/prioritization-rules): prepaid commits and credits
by `priority` (lower first), then $0 cost basis (credits, complimentary commits) before paid, then fewest applicable
products, earlier `ending_before`, earlier start; postpaid commits last. Rollover is not emulated. A segment only
pays for usage inside its access range and matching its applicability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .wire_format import cents, parse_time, to_decimal

_ALL_PRODUCTS = 10**9


@dataclass
class Segment:
    """One access-schedule item of a commit or credit: a separately expiring balance."""

    source: dict[str, Any]
    segment_id: str
    start: float
    end: float
    amount: int

    @property
    def kind(self) -> str:
        return str(self.source["type"])  # PREPAID | POSTPAID | CREDIT


def segments_of(source: dict[str, Any]) -> list[Segment]:
    items = (source.get("access_schedule") or {}).get("schedule_items") or []
    return [
        Segment(
            source,
            item["id"],
            parse_time(item["starting_at"]),
            parse_time(item["ending_before"]),
            cents(to_decimal(item["amount"])),
        )
        for item in items
    ]


def has_zero_cost_basis(source: dict[str, Any]) -> bool:
    """Credits and complimentary prepaid commits (no invoice schedule) cost the customer nothing."""
    if source["type"] == "CREDIT":
        return True
    schedule = source.get("invoice_schedule") or {}
    return not schedule.get("schedule_items")


def _applicable_product_count(source: dict[str, Any]) -> int:
    if source.get("applicable_product_ids"):
        return len(source["applicable_product_ids"])
    if source.get("specifiers"):
        return len(source["specifiers"])
    return _ALL_PRODUCTS


def priority_key(segment: Segment) -> tuple[Any, ...]:
    source = segment.source
    postpaid = source["type"] == "POSTPAID"
    priority = source.get("priority")
    return (
        1 if postpaid else 0,
        float(priority) if priority is not None else float("inf"),
        0 if has_zero_cost_basis(source) else 1,
        _applicable_product_count(source),
        segment.end,
        segment.start,
        source.get("_seq", 0),
        segment.segment_id,
    )


def applies_to(source: dict[str, Any], product: dict[str, Any], values: dict[str, str | None]) -> bool:
    """Does this commit/credit cover usage of `product` at pricing-group `values`? None configured = all."""
    tags = set(product.get("tags") or [])
    if source.get("applicable_product_ids") or source.get("applicable_product_tags"):
        if product["id"] in (source.get("applicable_product_ids") or []):
            return True
        return bool(tags & set(source.get("applicable_product_tags") or []))
    specifiers = source.get("specifiers") or []
    if not specifiers:
        return True
    for spec in specifiers:
        if spec.get("product_id") and spec["product_id"] != product["id"]:
            continue
        if spec.get("product_tags") and not tags & set(spec["product_tags"]):
            continue
        wanted = spec.get("pricing_group_values") or {}
        if any(values.get(k) != v for k, v in wanted.items()):
            continue
        return True
    return False
