"""Events -> billable metric values: filter on event type and properties, then COUNT/SUM/MAX/LATEST/UNIQUE.

Property values are compared as strings, exactly (case-sensitive), like Metronome's filters and group keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .wire_format import to_decimal

GroupValues = tuple[str | None, ...]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def metric_matches(metric: dict[str, Any], event: dict[str, Any]) -> bool:
    type_filter = metric.get("event_type_filter") or {}
    event_type = event.get("event_type")
    if type_filter.get("in_values") is not None and event_type not in type_filter["in_values"]:
        return False
    if type_filter.get("not_in_values") and event_type in type_filter["not_in_values"]:
        return False
    properties = event.get("properties") or {}
    for rule in metric.get("property_filters") or []:
        present = rule["name"] in properties and properties[rule["name"]] is not None
        if rule.get("exists") is True and not present:
            return False
        if rule.get("exists") is False and present:
            return False
        if rule.get("in_values") is not None and (
            not present or _as_text(properties[rule["name"]]) not in rule["in_values"]
        ):
            return False
        if rule.get("not_in_values") and present and _as_text(properties[rule["name"]]) in rule["not_in_values"]:
            return False
    aggregation = (metric.get("aggregation_type") or "COUNT").upper()
    key = metric.get("aggregation_key")
    return not (aggregation != "COUNT" and key and properties.get(key) is None)


def group_values(event: dict[str, Any], keys: Iterable[str]) -> GroupValues:
    properties = event.get("properties") or {}
    return tuple(None if properties.get(k) is None else _as_text(properties[k]) for k in keys)


def aggregate(metric: dict[str, Any], events: list[dict[str, Any]]) -> Decimal:
    """The metric's value over `events` (already filtered to the metric and ordered by timestamp)."""
    aggregation = (metric.get("aggregation_type") or "COUNT").upper()
    key = metric.get("aggregation_key")
    if aggregation == "COUNT" or not key:
        return Decimal(len(events))
    values = [(e["_ts"], (e.get("properties") or {}).get(key)) for e in events]
    values = [(ts, v) for ts, v in values if v is not None]
    if not values:
        return Decimal(0)
    if aggregation == "SUM":
        return sum((to_decimal(v) for _, v in values), Decimal(0))
    if aggregation == "MAX":
        return max(to_decimal(v) for _, v in values)
    if aggregation == "LATEST":
        return to_decimal(max(values, key=lambda tv: tv[0])[1])
    if aggregation == "UNIQUE":
        return Decimal(len({_as_text(v) for _, v in values}))
    return Decimal(len(events))


def aggregate_by_group(
    metric: dict[str, Any], events: list[dict[str, Any]], keys: list[str]
) -> dict[GroupValues, Decimal]:
    """The metric per distinct value-tuple of `keys` (events lacking a key fall under None for it)."""
    buckets: dict[GroupValues, list[dict[str, Any]]] = {}
    for event in events:
        buckets.setdefault(group_values(event, keys), []).append(event)
    return {values: aggregate(metric, bucket) for values, bucket in buckets.items()}
