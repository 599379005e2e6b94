"""Subscriptions and subscription items. Periods live on each item (`current_period_start/end`, as from
2025-03-31.basil); all items of a subscription share the interval of their prices and the billing cycle anchor.

Emulator simplifications: no proration on creation or item changes; `backdate_start_date` sets `start_date` and,
unless `billing_cycle_anchor` is given, the anchor, but periods before creation are not invoiced.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from .api_call import ApiCall, as_int, metadata_update
from .billing_engine import LIVE
from .billing_periods import boundary, period_containing
from .errors import StripeError
from .listing import created_filter, page
from .object_shapes import shaped
from .rendering import render
from .state import StripeState


def new_item(state: StripeState, sub: dict[str, Any], given: dict[str, Any], index: int | None) -> dict[str, Any]:
    param = f"items[{index}][price]" if index is not None else "price"
    if not given.get("price"):
        raise StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)
    price = state.get("price", given["price"], param)
    if not price["active"]:
        raise StripeError(400, f"The price specified is inactive: {price['id']}.", param=param)
    if price["type"] != "recurring":
        raise StripeError(400, "A subscription item needs a recurring price.", param=param)
    metered = price["recurring"]["usage_type"] == "metered"
    quantity = as_int(given.get("quantity"))
    if metered and quantity is not None:
        raise StripeError(400, "Quantity cannot be set for metered prices.", param=param.replace("price", "quantity"))
    item = shaped(
        "subscription_item",
        id=state.new_id("si"),
        created=sub["created"],
        discounts=[],
        metadata=metadata_update({}, given.get("metadata")),
        price=price["id"],
        quantity=None if metered else (quantity if quantity is not None else 1),
        subscription=sub["id"],
        tax_rates=[],
        plan=None,
        current_period_start=sub["_period_start"],
        current_period_end=sub["_period_end"],
        billing_thresholds=given.get("billing_thresholds") or None,
    )
    item["_billed_quantity"] = "0"
    item["_billed_amount"] = 0
    return item


def _interval_of(call: ApiCall, price_ids: list[str]) -> tuple[str, int, str]:
    shapes = set()
    for price_id in price_ids:
        price = call.state.get("price", price_id)
        shapes.add((price["recurring"]["interval"], int(price["recurring"]["interval_count"]), price["currency"]))
    if len(shapes) != 1:
        raise StripeError(400, "All prices on a subscription must have the same currency and interval.", param="items")
    return shapes.pop()


def create_subscription(call: ApiCall) -> dict[str, Any]:
    state = call.state
    params = call.params
    customer = state.get("customer", params.get("customer"), "customer")
    items_given = params.get("items") or []
    if not items_given:
        raise StripeError(400, "Missing required param: items.", code="parameter_missing", param="items")
    for index, given in enumerate(items_given):
        state.get("price", given.get("price") or "", f"items[{index}][price]")
    interval, count, currency = _interval_of(call, [g["price"] for g in items_given])
    now = state.now_for(customer["id"])
    start = as_int(params.get("backdate_start_date")) or now
    if start > now:
        raise StripeError(400, "backdate_start_date must be in the past.", param="backdate_start_date")
    trial_end = params.get("trial_end")
    trial_days = as_int(params.get("trial_period_days"))
    trial_end_at = None
    if trial_end not in (None, "now"):
        trial_end_at = int(trial_end)
    elif trial_days:
        trial_end_at = now + trial_days * 86400
    if trial_end_at is not None and trial_end_at <= now:
        raise StripeError(400, "trial_end must be in the future.", param="trial_end")
    anchor = _billing_cycle_anchor(params, start, now, interval, count) or trial_end_at or start
    if trial_end_at is not None:
        period = (now, trial_end_at)
    elif anchor > now:
        period = (start, anchor)
    else:
        period = period_containing(anchor, interval, count, now)
    cancel_at = params.get("cancel_at")
    thresholds = params.get("billing_thresholds")
    sub = shaped(
        "subscription",
        id=state.new_id("sub"),
        automatic_tax={"enabled": False, "liability": None, "disabled_reason": None},
        billing_cycle_anchor=anchor,
        billing_cycle_anchor_config=_anchor_config_shape(params.get("billing_cycle_anchor_config")),
        billing_mode={"type": (params.get("billing_mode") or {}).get("type") or "classic", "flexible": None},
        billing_thresholds=(
            {
                "amount_gte": as_int(thresholds.get("amount_gte")),
                "reset_billing_cycle_anchor": thresholds.get("reset_billing_cycle_anchor"),
            }
            if thresholds
            else None
        ),
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method=params.get("collection_method") or "charge_automatically",
        created=now,
        currency=currency,
        customer=customer["id"],
        days_until_due=as_int(params.get("days_until_due")),
        default_payment_method=params.get("default_payment_method"),
        default_tax_rates=[],
        description=params.get("description"),
        discounts=[],
        ended_at=None,
        invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
        latest_invoice=None,
        metadata=metadata_update({}, params.get("metadata")),
        pending_update=None,
        schedule=None,
        start_date=start,
        status="trialing" if trial_end_at else "active",
        test_clock=customer.get("test_clock"),
        trial_end=trial_end_at,
        trial_start=now if trial_end_at else None,
        pause_collection=None,
        pending_invoice_item_interval=None,
        payment_settings=None,
        transfer_data=None,
        trial_settings=None,
        next_pending_invoice_item_invoice=None,
    )
    sub["_period_start"], sub["_period_end"] = period
    if trial_end_at is None and start < anchor:  # a first period shorter than a cycle, up to the anchor
        sub["_first_period_proration"] = params.get("proration_behavior") or "create_prorations"
    items = [new_item(call.state, sub, given, index) for index, given in enumerate(items_given)]
    for item in items:
        state.put(item)
    sub["_items"] = [item["id"] for item in items]
    _apply_cancel(sub, params, cancel_at)
    state.put(sub)
    if customer.get("currency") is None:  # a customer takes the currency of its first subscription
        state.put({**customer, "currency": currency})
    call.engine.first_invoice(sub, now)
    call.engine.advance(sub["id"])
    call.engine.world_due = None  # a new period end to watch
    return render(state, state.get("subscription", sub["id"]))


def _billing_cycle_anchor(params: dict[str, Any], start: int, now: int, interval: str, count: int) -> int | None:
    """`billing_cycle_anchor` (a timestamp) or `billing_cycle_anchor_config` (day of month and time, UTC), checked
    as Stripe does: not in the past (before the start when backdated), not after the next natural billing date."""
    given = as_int(params.get("billing_cycle_anchor"))
    config = params.get("billing_cycle_anchor_config")
    if given is not None and config:
        raise StripeError(
            400,
            "You may only specify one of these parameters: billing_cycle_anchor, billing_cycle_anchor_config.",
            param="billing_cycle_anchor_config",
        )
    if config:
        if interval not in ("month", "year"):
            raise StripeError(
                400,
                "billing_cycle_anchor_config is only valid with monthly and yearly price intervals.",
                param="billing_cycle_anchor_config",
            )
        return anchor_from_config(config, start, interval)
    if given is None:
        return None
    earliest = start if params.get("backdate_start_date") else now
    if given < earliest:
        raise StripeError(400, "billing_cycle_anchor cannot be in the past.", param="billing_cycle_anchor")
    natural = boundary(start, interval, count, 1)
    if given > natural:
        raise StripeError(
            400,
            f"billing_cycle_anchor cannot be later than next natural billing date ({natural}) for plan",
            param="billing_cycle_anchor",
        )
    return given


def anchor_from_config(config: dict[str, Any], start: int, interval: str) -> int:
    """The first instant after `start` on `day_of_month` (clamped to the month's last day) at hour:minute:second
    UTC, in `month` for yearly prices."""
    day = int(config["day_of_month"])
    hour, minute, second = (int(config.get(k) or 0) for k in ("hour", "minute", "second"))
    begin = datetime.fromtimestamp(start, UTC)
    if interval == "year":
        month0 = int(config.get("month") or begin.month) - 1
        months = [(begin.year + n, month0) for n in range(3)]
    else:
        months = [divmod(begin.year * 12 + begin.month - 1 + n, 12) for n in range(3)]
    for year, month0 in months:
        last = calendar.monthrange(year, month0 + 1)[1]
        candidate = int(datetime(year, month0 + 1, min(day, last), hour, minute, second, tzinfo=UTC).timestamp())
        if candidate > start:
            return candidate
    raise AssertionError("unreachable: a later month always has the day")


def _anchor_config_shape(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    return {key: as_int(config.get(key)) for key in ("day_of_month", "hour", "minute", "month", "second")}


def _apply_cancel(sub: dict[str, Any], params: dict[str, Any], cancel_at: Any) -> None:
    if "cancel_at_period_end" in params:
        flag = bool(params["cancel_at_period_end"])
        sub["cancel_at_period_end"] = flag
        sub["cancel_at"] = sub["_period_end"] if flag else None
    if cancel_at is not None:
        if cancel_at == "":
            sub["cancel_at"] = None
            sub["cancel_at_period_end"] = False
        elif cancel_at in ("min_period_end", "max_period_end"):
            sub["cancel_at"] = sub["_period_end"]
        else:
            sub["cancel_at"] = int(cancel_at)
        sub["cancel_at_period_end"] = sub["cancel_at"] == sub["_period_end"] and sub["cancel_at"] is not None


def retrieve_subscription(call: ApiCall) -> dict[str, Any]:
    return render(call.state, call.state.get("subscription", call.path["sub"], "subscription"))


def update_subscription(call: ApiCall) -> dict[str, Any]:
    state = call.state
    sub = dict(state.get("subscription", call.path["sub"], "subscription"))
    if sub["status"] not in LIVE:
        raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.")
    params = call.params
    sub["metadata"] = metadata_update(sub["metadata"], params.get("metadata"))
    if "description" in params:
        sub["description"] = params["description"] or None
    if "default_payment_method" in params:
        sub["default_payment_method"] = params["default_payment_method"] or None
    if "billing_thresholds" in params:
        given = params["billing_thresholds"]
        sub["billing_thresholds"] = (
            {"amount_gte": as_int(given.get("amount_gte")), "reset_billing_cycle_anchor": None} if given else None
        )
    if "collection_method" in params:
        sub["collection_method"] = params["collection_method"]
    if params.get("cancellation_details"):
        sub["cancellation_details"] = {
            "comment": params["cancellation_details"].get("comment"),
            "feedback": params["cancellation_details"].get("feedback"),
            "reason": "cancellation_requested",
        }
    if ("cancel_at_period_end" in params or "cancel_at" in params) and sub.get("schedule"):
        raise StripeError(
            400,
            f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and updating any "
            "cancelation behavior directly is not allowed. Please update the schedule instead.",
        )
    if "cancel_at_period_end" in params or "cancel_at" in params:
        _apply_cancel(sub, params, params.get("cancel_at"))
        now = state.now_for(sub["customer"])
        sub["canceled_at"] = now if sub["cancel_at"] is not None else None
        if sub["cancel_at"] is not None:
            sub["cancellation_details"] = {**sub["cancellation_details"], "reason": "cancellation_requested"}
    if params.get("items"):
        for index, given in enumerate(params["items"]):
            if given.get("id"):
                item = dict(state.get("subscription_item", given["id"], f"items[{index}][id]"))
                if given.get("deleted"):
                    sub["_items"] = [i for i in sub["_items"] if i != item["id"]]
                    continue
                if given.get("quantity") is not None:
                    item["quantity"] = as_int(given["quantity"])
                item["metadata"] = metadata_update(item["metadata"], given.get("metadata"))
                state.put(item)
            else:
                item = new_item(call.state, sub, given, index)
                state.put(item)
                sub["_items"] = [*sub["_items"], item["id"]]
    state.put(sub)
    call.engine.advance(sub["id"])
    call.engine.world_due = None  # cancel_at may have moved
    return render(state, state.get("subscription", sub["id"]))


def cancel_subscription(call: ApiCall) -> dict[str, Any]:
    state = call.state
    sub = state.get("subscription", call.path["sub"], "subscription")
    if sub["status"] not in LIVE:
        raise StripeError(
            400, f"This subscription is already canceled: {sub['id']}", code="resource_missing", param="subscription"
        )
    now = state.now_for(sub["customer"])
    call.engine.advance(sub["id"])  # bill any period that already ended first
    sub = dict(state.get("subscription", sub["id"]))
    if sub["status"] not in LIVE:
        return render(state, sub)
    details = call.get("cancellation_details") or {}
    sub["cancellation_details"] = {
        "comment": details.get("comment"),
        "feedback": details.get("feedback"),
        "reason": "cancellation_requested",
    }
    sub["canceled_at"] = now
    state.put(sub)
    call.engine.end_subscription(
        sub["id"], now, invoice_now=bool(call.get("invoice_now")), prorate=bool(call.get("prorate"))
    )
    if sub.get("schedule"):
        from .subscription_schedules import mark_canceled

        mark_canceled(state, sub["schedule"], now)
    return render(state, state.get("subscription", sub["id"]))


def list_subscriptions(call: ApiCall) -> dict[str, Any]:
    params = call.params
    if params.get("customer"):
        items = list(reversed(call.state.owned_by("subscription", params["customer"])))
    else:
        items = list(reversed(call.state.all("subscription")))
    status = params.get("status")
    if status in (None, ""):
        items = [s for s in items if s["status"] not in ("canceled", "incomplete_expired")]
    elif status == "ended":
        items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    if params.get("customer"):
        items = [s for s in items if s["customer"] == params["customer"]]
    if params.get("test_clock"):
        items = [s for s in items if s.get("test_clock") == params["test_clock"]]
    if params.get("price"):
        items = [
            s
            for s in items
            if any(call.state.get("subscription_item", i)["price"] == params["price"] for i in s["_items"])
        ]
    items = created_filter(items, params.get("created"))
    return page([render(call.state, s) for s in items], params, "/v1/subscriptions")


def create_item(call: ApiCall) -> dict[str, Any]:
    state = call.state
    sub = dict(state.get("subscription", call.get("subscription"), "subscription"))
    _interval_of(call, [state.get("subscription_item", i)["price"] for i in sub["_items"]] + [call.get("price")])
    item = new_item(call.state, sub, call.params, None)
    state.put(item)
    sub["_items"] = [*sub["_items"], item["id"]]
    state.put(sub)
    return render(state, item)


def retrieve_item(call: ApiCall) -> dict[str, Any]:
    return render(call.state, call.state.get("subscription_item", call.path["item"], "item"))


def update_item(call: ApiCall) -> dict[str, Any]:
    item = dict(call.state.get("subscription_item", call.path["item"], "item"))
    if call.get("quantity") is not None:
        item["quantity"] = as_int(call.get("quantity"))
    item["metadata"] = metadata_update(item["metadata"], call.get("metadata"))
    return render(call.state, call.state.put(item))


def delete_item(call: ApiCall) -> dict[str, Any]:
    item = call.state.get("subscription_item", call.path["item"], "item")
    sub = dict(call.state.get("subscription", item["subscription"]))
    if len(sub["_items"]) == 1:
        raise StripeError(400, "A subscription must keep at least one item; cancel the subscription instead.")
    sub["_items"] = [i for i in sub["_items"] if i != item["id"]]
    call.state.put(sub)
    return {"id": item["id"], "object": "subscription_item", "deleted": True}


def list_items(call: ApiCall) -> dict[str, Any]:
    sub = call.state.get("subscription", call.get("subscription"), "subscription")
    items = [render(call.state, call.state.get("subscription_item", i)) for i in sub["_items"]]
    return page(items, call.params, "/v1/subscription_items")
