"""Ingest (bare array of 1-100 events, deduped on `transaction_id`), events search and usage by group."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .api_call import ApiCall
from .customers import get_customer
from .errors import ApiError
from .pagination import page
from .usage_aggregation import aggregate_by_group, metric_matches
from .wire_format import derived_id, format_time, json_number, parse_time, public

MAX_FUTURE_SECONDS = 24 * 3600
MAX_BACKDATE_SECONDS = 34 * 86400


def ingest(call: ApiCall) -> Any:
    events = call.body
    if not isinstance(events, list) or not 1 <= len(events) <= 100:
        raise ApiError(400, "body: must be an array of 1 to 100 events")
    now = call.now()
    accepted = []
    for index, event in enumerate(events):
        ts = parse_time(event["timestamp"], f"{index}.timestamp")
        if ts > now + MAX_FUTURE_SECONDS:
            raise ApiError(400, f"{index}.timestamp: more than 24 hours in the future")
        if ts < now - MAX_BACKDATE_SECONDS:
            raise ApiError(400, f"{index}.timestamp: more than 34 days in the past")
        if not 1 <= len(event["transaction_id"]) <= 128:
            raise ApiError(400, f"{index}.transaction_id: must be 1 to 128 characters")
        accepted.append((event, ts))
    with call.store.lock:
        for event, ts in accepted:
            if call.store.get("event", event["transaction_id"]) is not None:
                _record_duplicate(call, event, now)  # accepted and ignored, but events/search shows it
                continue
            call.engine.add_event(
                {
                    "transaction_id": event["transaction_id"],
                    "customer_id": event["customer_id"],
                    "event_type": event["event_type"],
                    "timestamp": event["timestamp"],
                    "properties": event.get("properties") or {},
                    "processed_at": format_time(now),
                    "_ts": ts,
                }
            )
    return None


MAX_DUPLICATES_KEPT = 10
"""Duplicate receipts of one transaction_id kept for events/search (a retry storm must not grow the store)."""


def _record_duplicate(call: ApiCall, event: dict[str, Any], now: float) -> None:
    tid = event["transaction_id"]
    kept = call.store.get("event_duplicates", tid) or {"receipts": [], "count": 0}
    receipt = {
        "customer_id": event["customer_id"],
        "event_type": event["event_type"],
        "timestamp": event["timestamp"],
        "properties": event.get("properties") or {},
        "processed_at": format_time(now),
        "_customer_id": call.engine.resolve_customer_id(event["customer_id"]),
        "_n": kept["count"] + 1,
    }
    receipts = [*kept["receipts"], receipt][-MAX_DUPLICATES_KEPT:]
    call.store.put("event_duplicates", tid, {"receipts": receipts, "count": kept["count"] + 1})


def _search_item(call: ApiCall, event: dict[str, Any], metrics: list[dict[str, Any]], **extra: Any) -> Any:
    customer = call.store.get("customer", event["_customer_id"]) if event.get("_customer_id") else None
    item = public(event) | extra
    if customer is not None:
        item["matched_customer"] = {"id": customer["id"], "name": customer["name"]}
        item["matched_billable_metrics"] = [
            {**public(m), "group_keys": m.get("group_keys", [])} for m in metrics if metric_matches(m, event)
        ]
    else:
        item["matched_billable_metrics"] = []
    return item


def search_events(call: ApiCall) -> Any:
    """Each transaction id's accepted event, then the later receipts of the same id with `is_duplicate: true`;
    the customer is the one matched at ingestion."""
    metrics = call.store.all("billable_metric")
    found = []
    for transaction_id in call.body["transactionIds"]:
        event = call.store.get("event", transaction_id)
        if event is None:
            continue
        found.append(_search_item(call, event, metrics, id=derived_id("event", transaction_id), is_duplicate=False))
        duplicates = call.store.get("event_duplicates", transaction_id) or {"receipts": []}
        for receipt in duplicates["receipts"]:
            duplicate = {**receipt, "transaction_id": transaction_id}
            found.append(
                _search_item(
                    call,
                    duplicate,
                    metrics,
                    id=derived_id("event", transaction_id, str(receipt["_n"])),
                    is_duplicate=True,
                )
            )
    return found


def _windows(start: float, end: float, size: str) -> list[tuple[float, float]]:
    size = size.upper()
    if size == "NONE":
        return [(start, end)]
    step = 3600 if size == "HOUR" else 86400
    result = []
    cursor = start
    while cursor < end:
        result.append((cursor, min(cursor + step, end)))
        cursor += step
    return result


def _midnight(instant: float) -> float:
    moment = datetime.fromtimestamp(instant, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def usage_with_groups(call: ApiCall) -> Any:
    body = call.body
    customer = get_customer(call, body["customer_id"])
    metric = call.store.get("billable_metric", body["billable_metric_id"])
    if metric is None:
        raise ApiError(404, f"billable metric not found: {body['billable_metric_id']}")
    now = call.now()
    start = parse_time(body["starting_on"], "starting_on") if body.get("starting_on") else _midnight(now)
    end = parse_time(body["ending_before"], "ending_before") if body.get("ending_before") else _midnight(now) + 86400
    if start % 86400 or end % 86400:
        raise ApiError(400, "starting_on/ending_before: must be UTC midnight")
    if end <= start:
        raise ApiError(400, "ending_before: must be after starting_on")
    group_by = body.get("group_by") or {}
    keys: list[str] = list(body.get("group_key") or ([group_by["key"]] if group_by.get("key") else []))
    wanted_values = group_by.get("values")
    events = [e for e in call.engine.customer_events(customer) if metric_matches(metric, e)]
    rows = []
    for w_start, w_end in _windows(start, end, body["window_size"]):
        in_window = [e for e in events if w_start <= e["_ts"] < w_end]
        groups = aggregate_by_group(metric, in_window, keys) if keys else {(): _value(metric, in_window)}
        for values, value in groups.items():
            if wanted_values is not None and keys and values[0] not in wanted_values:
                continue
            row: dict[str, Any] = {
                "starting_on": format_time(w_start),
                "ending_before": format_time(w_end),
                "group_key": keys[0] if len(keys) == 1 else None,
                "group_value": values[0] if len(keys) == 1 else None,
                "value": json_number(value),
            }
            if len(keys) > 1:
                row["group"] = {k: v for k, v in zip(keys, values, strict=True) if v is not None}
            rows.append(row)
    chunk, next_page = page(rows, call.query.get("limit"), call.query.get("next_page"))
    return {"data": chunk, "next_page": next_page}


def _value(metric: dict[str, Any], events: list[dict[str, Any]]) -> Decimal:
    return aggregate_by_group(metric, events, []).get((), Decimal(0))
