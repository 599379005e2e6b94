"""Billing meters and meter events: `sum`/`count`/`last` per customer, dedupe on `identifier`, Stripe's time window
(at most 35 days in the past, 5 minutes in the future, relative to the customer's clock), no events for an inactive
meter. Reported usage may cross a subscription's billing threshold, which the billing engine checks at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .api_call import ApiCall, as_int
from .errors import StripeError
from .listing import page
from .object_shapes import shaped
from .state import MeteredValue

PAST_WINDOW = 35 * 86400
FUTURE_WINDOW = 5 * 60
_GROUPING_SECONDS = {"hour": 3600, "day": 86400}


def aggregate(formula: str, values: list[MeteredValue]) -> Decimal:
    if formula == "count":
        return Decimal(len(values))
    if not values:
        return Decimal(0)
    if formula == "last":
        return Decimal(str(values[-1].value))
    return sum((Decimal(str(v.value)) for v in values), Decimal(0))


def meter_for_event(call: ApiCall, event_name: str) -> dict[str, Any] | None:
    found = [m for m in call.state.all("billing.meter") if m["event_name"] == event_name]
    active = [m for m in found if m["status"] == "active"]
    chosen = active or found
    return chosen[0] if chosen else None


def create_meter(call: ApiCall) -> dict[str, Any]:
    state = call.state
    params = call.params
    for m in state.all("billing.meter"):
        if m["event_name"] == params["event_name"] and m["status"] == "active":
            raise StripeError(
                400, f"An active meter with event_name '{params['event_name']}' already exists.", param="event_name"
            )
    mapping = params.get("customer_mapping") or {}
    now = int(state.world_now())
    meter = shaped(
        "billing.meter",
        id=state.new_id("mtr"),
        created=now,
        updated=now,
        display_name=params["display_name"],
        event_name=params["event_name"],
        event_time_window=params.get("event_time_window"),
        customer_mapping={
            "event_payload_key": mapping.get("event_payload_key") or "stripe_customer_id",
            "type": mapping.get("type") or "by_id",
        },
        default_aggregation={"formula": params["default_aggregation"]["formula"]},
        value_settings={"event_payload_key": (params.get("value_settings") or {}).get("event_payload_key") or "value"},
        status="active",
        status_transitions={"deactivated_at": None},
    )
    return state.put(meter)


def retrieve_meter(call: ApiCall) -> dict[str, Any]:
    return call.state.get("billing.meter", call.path["id"])


def update_meter(call: ApiCall) -> dict[str, Any]:
    meter = dict(call.state.get("billing.meter", call.path["id"]))
    if call.get("display_name"):
        meter["display_name"] = call.get("display_name")
    meter["updated"] = int(call.state.world_now())
    return call.state.put(meter)


def _set_status(call: ApiCall, status: str) -> dict[str, Any]:
    meter = dict(call.state.get("billing.meter", call.path["id"]))
    now = int(call.state.world_now())
    meter["status"] = status
    meter["status_transitions"] = {"deactivated_at": now if status == "inactive" else None}
    meter["updated"] = now
    return call.state.put(meter)


def deactivate_meter(call: ApiCall) -> dict[str, Any]:
    return _set_status(call, "inactive")


def reactivate_meter(call: ApiCall) -> dict[str, Any]:
    return _set_status(call, "active")


def list_meters(call: ApiCall) -> dict[str, Any]:
    items = list(reversed(call.state.all("billing.meter")))
    if call.get("status"):
        items = [m for m in items if m["status"] == call.get("status")]
    return page(items, call.params, "/v1/billing/meters")


def record_meter_event(
    call: ApiCall, event_name: str, payload: dict[str, str], identifier: str | None, timestamp: int | None
) -> dict[str, Any]:
    """Validate and store one event as Stripe does (v1 answers the error, the v2 stream reports it later)."""
    state = call.state
    meter = meter_for_event(call, event_name)
    if meter is not None and meter["status"] != "active":
        raise StripeError(
            400, f"The meter for event_name '{event_name}' is inactive and does not accept events.", param="event_name"
        )
    customer_key = meter["customer_mapping"]["event_payload_key"] if meter else "stripe_customer_id"
    value_key = meter["value_settings"]["event_payload_key"] if meter else "value"
    customer_id = payload.get(customer_key)
    if not customer_id:
        raise StripeError(400, f"Missing payload[{customer_key}].", param=f"payload[{customer_key}]")
    customer = state.get("customer", customer_id, f"payload[{customer_key}]")
    formula = meter["default_aggregation"]["formula"] if meter else "sum"
    raw_value = payload.get(value_key)
    if formula != "count" and raw_value is None:
        raise StripeError(400, f"Missing payload[{value_key}].", param=f"payload[{value_key}]")
    try:
        value = float(Decimal(raw_value)) if raw_value is not None else 1.0
    except ArithmeticError as exc:
        raise StripeError(400, f"payload[{value_key}] must be a number.", param=f"payload[{value_key}]") from exc
    now = state.now_for(customer["id"])
    timestamp = now if timestamp is None else timestamp
    if timestamp < now - PAST_WINDOW or timestamp > now + FUTURE_WINDOW:
        raise StripeError(
            400,
            "Timestamp must be within the past 35 days and no more than 5 minutes in the future.",
            param="timestamp",
        )
    identifier = identifier or state.new_id("mevt")
    if identifier in state.identifiers:
        raise StripeError(
            400,
            f"An event already exists with identifier {identifier}.",
            param="identifier",
            headers={"stripe-should-retry": "false"},
        )
    event = shaped(
        "billing.meter_event",
        created=now,
        event_name=event_name,
        identifier=identifier,
        payload=payload,
        timestamp=timestamp,
    )
    event["_customer"] = customer["id"]
    event["_value"] = value
    event["_seq"] = len(state.identifiers)
    state.record_event(event)
    call.engine.check_thresholds(customer["id"])
    return {k: v for k, v in event.items() if not k.startswith("_")}


def create_meter_event(call: ApiCall) -> dict[str, Any]:
    payload = {str(k): str(v) for k, v in (call.params.get("payload") or {}).items()}
    return record_meter_event(
        call,
        call.params["event_name"],
        payload,
        call.params.get("identifier"),
        as_int(call.params.get("timestamp")),
    )


def list_event_summaries(call: ApiCall) -> dict[str, Any]:
    state = call.state
    meter = state.get("billing.meter", call.path["id"])
    customer = state.get("customer", call.params["customer"], "customer")
    start, end = int(call.params["start_time"]), int(call.params["end_time"])
    if end <= start:
        raise StripeError(400, "end_time must be after start_time.", param="end_time")
    window = call.params.get("value_grouping_window")
    step = _GROUPING_SECONDS.get(window, end - start) if window else end - start
    summaries = []
    for bucket_start in range(start, end, step):
        bucket_end = min(end, bucket_start + step)
        values = state.values(meter["event_name"], customer["id"], bucket_start, bucket_end)
        total = aggregate(meter["default_aggregation"]["formula"], values)
        summaries.append(
            shaped(
                "billing.meter_event_summary",
                id=f"mtrusg_{meter['id']}_{customer['id']}_{bucket_start}",
                aggregated_value=float(total),
                start_time=bucket_start,
                end_time=bucket_end,
                meter=meter["id"],
            )
        )
    summaries.reverse()
    return page(summaries, call.params, call.url)
