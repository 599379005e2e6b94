"""Subscription schedules: a subscription's planned phases and what happens when the last one ends.

As Stripe documents them: `from_subscription` makes a schedule with one phase, the subscription's current period
and items, `end_behavior=release`; `update` replaces the phases (the current phase keeps its start) and
`end_behavior`. When a phase ends the next one's items become the subscription's; when the last one ends,
`release` leaves the subscription running on its own (schedule `released`) and `cancel` ends it (schedule
`completed`): the subscription's `cancel_at` is the last phase's end, so it is billed there as any `cancel_at`
(a final cycle invoice at a period end, else a final invoice for the open usage). `release` detaches the
subscription now (clearing that `cancel_at` unless `preserve_cancel_date`); `cancel` ends the subscription now
(`invoice_now`, `prorate`, both true by default). While a schedule manages it, the subscription's own
cancellation settings cannot be changed.

Emulator simplifications: schedules are made `from_subscription` only (not for a customer with phases that create
the subscription later); item changes at a phase start take effect then, without proration, and a metered item
dropped mid-period is not billed for that period.
"""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall, as_int, metadata_update
from .billing_engine import LIVE
from .billing_periods import boundary
from .errors import StripeError
from .listing import created_filter, page
from .object_shapes import shaped
from .state import StripeState, public

KIND = "subscription_schedule"
_FROM_SUBSCRIPTION_ALLOWED = {"from_subscription", "expand", "metadata"}


def _phase(currency: str, start: int, end: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end,
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": dict(item.get("metadata") or {}),
                "plan": item["price"],
                "price": item["price"],
                "quantity": item.get("quantity"),
                "tax_rates": [],
            }
            for item in items
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def create_schedule(call: ApiCall) -> dict[str, Any]:
    state = call.state
    sub_id = call.get("from_subscription")
    if not sub_id:
        raise StripeError(
            400,
            "The local emulator makes subscription schedules from_subscription only.",
            param="from_subscription",
        )
    extra = sorted(set(call.params) - _FROM_SUBSCRIPTION_ALLOWED)
    if extra:
        raise StripeError(400, f"You cannot set `{extra[0]}` if `from_subscription` is set.", param=extra[0])
    sub = dict(state.get("subscription", sub_id, "from_subscription"))
    if sub["status"] not in LIVE:
        raise StripeError(400, "You cannot migrate a canceled subscription to a schedule.", param="from_subscription")
    if sub.get("schedule"):
        raise StripeError(
            400,
            f"You cannot migrate a subscription that is already attached to a schedule: {sub['schedule']}.",
            param="from_subscription",
        )
    now = state.now_for(sub["customer"])
    items = [state.get("subscription_item", i) for i in sub["_items"]]
    phase = _phase(sub["currency"], sub["_period_start"], sub["_period_end"], items)
    schedule = shaped(
        KIND,
        id=state.new_id("sub_sched"),
        billing_mode={"type": sub["billing_mode"]["type"], "flexible": None},
        created=now,
        current_phase={"start_date": phase["start_date"], "end_date": phase["end_date"]},
        customer=sub["customer"],
        default_settings={
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": sub.get("billing_thresholds"),
            "collection_method": sub["collection_method"],
            "default_payment_method": sub.get("default_payment_method"),
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        end_behavior="release",
        metadata=metadata_update({}, call.get("metadata")),
        phases=[phase],
        status="active",
        subscription=sub["id"],
        test_clock=sub.get("test_clock"),
    )
    state.put(schedule)
    sub["schedule"] = schedule["id"]
    state.put(sub)
    return public(schedule)


def _end_of(phase: dict[str, Any], start: int, index: int) -> int:
    if phase.get("end_date") not in (None, ""):
        return int(phase["end_date"])
    duration = phase.get("duration")
    if duration:
        return boundary(start, duration["interval"], int(duration.get("interval_count") or 1), 1)
    raise StripeError(400, f"Phase {index} needs an end_date or a duration.", param=f"phases[{index}][end_date]")


def update_schedule(call: ApiCall) -> dict[str, Any]:
    state = call.state
    schedule = dict(state.get(KIND, call.path["schedule"], "schedule"))
    if schedule["status"] not in ("active", "not_started"):
        raise StripeError(
            400, f"You cannot update a subscription schedule that is {schedule['status']}.", param="schedule"
        )
    sub = dict(state.get("subscription", schedule["subscription"]))
    now = state.now_for(sub["customer"])
    schedule["metadata"] = metadata_update(schedule["metadata"], call.get("metadata"))
    if call.get("end_behavior"):
        if call.get("end_behavior") not in ("release", "cancel"):
            raise StripeError(400, "end_behavior must be release or cancel.", param="end_behavior")
        schedule["end_behavior"] = call.get("end_behavior")
    if call.get("phases") is not None:
        schedule["phases"] = _phases(call, schedule, sub, now)
    state.put(schedule)
    _apply(state, schedule, sub, now)
    call.engine.world_due = None
    call.engine.advance(sub["id"])
    return public(state.get(KIND, schedule["id"]))


def _phases(call: ApiCall, schedule: dict[str, Any], sub: dict[str, Any], now: int) -> list[dict[str, Any]]:
    state = call.state
    given = call.get("phases") or []
    if not given:
        raise StripeError(400, "A subscription schedule needs at least one phase.", param="phases")
    current = schedule["current_phase"]
    phases: list[dict[str, Any]] = []
    start = current["start_date"] if current else now
    for index, spec in enumerate(given):
        param = f"phases[{index}]"
        if spec.get("start_date") not in (None, ""):
            asked = now if spec["start_date"] == "now" else int(spec["start_date"])
            if index == 0 and current and asked != current["start_date"]:
                raise StripeError(
                    400, "You can not modify the start date of the current phase.", param=f"{param}[start_date]"
                )
            if index > 0 and asked != start:
                raise StripeError(
                    400, "Phases must be contiguous: each starts where the previous one ends.",
                    param=f"{param}[start_date]",
                )  # fmt: skip
        end = now if spec.get("end_date") == "now" else _end_of(spec, start, index)
        if end <= start:
            raise StripeError(400, "A phase must end after it starts.", param=f"{param}[end_date]")
        items = spec.get("items") or []
        if not items:
            raise StripeError(400, "Missing required param: items.", code="parameter_missing", param=f"{param}[items]")
        for item_index, item in enumerate(items):
            price = state.get("price", item.get("price") or "", f"{param}[items][{item_index}][price]")
            if price["currency"] != sub["currency"]:
                raise StripeError(400, "All phases must use the subscription's currency.", param=f"{param}[items]")
        phase = _phase(sub["currency"], start, end, [
            {"price": i["price"], "quantity": as_int(i.get("quantity")), "metadata": i.get("metadata")}
            for i in items
        ])  # fmt: skip
        phase["metadata"] = dict(spec.get("metadata") or {})
        if spec.get("proration_behavior"):
            phase["proration_behavior"] = spec["proration_behavior"]
        phases.append(phase)
        start = end
    return phases


def _apply(state: StripeState, schedule: dict[str, Any], sub: dict[str, Any], now: int) -> None:
    """Make the subscription follow the schedule at `now`: the current phase's items, and `cancel_at` at the last
    phase's end when the schedule ends by cancelling."""
    sub = dict(state.get("subscription", sub["id"]))
    phases = schedule["phases"]
    current = next((p for p in phases if p["start_date"] <= now < p["end_date"]), None)
    if current is not None:
        _set_items(state, sub, current)
        sub = dict(state.get("subscription", sub["id"]))
        schedule["current_phase"] = {"start_date": current["start_date"], "end_date": current["end_date"]}
    last_end = phases[-1]["end_date"]
    if schedule["end_behavior"] == "cancel":
        sub["cancel_at"] = last_end
        sub["cancel_at_period_end"] = last_end == sub["_period_end"]
        sub["_cancel_by_schedule"] = True
    elif sub.pop("_cancel_by_schedule", False):
        sub["cancel_at"], sub["cancel_at_period_end"] = None, False
    sub["_schedule_phase_end"] = min((p["end_date"] for p in phases if p["end_date"] > now), default=None)
    state.put(sub)
    state.put(schedule)


def _set_items(state: StripeState, sub: dict[str, Any], phase: dict[str, Any]) -> None:
    from .subscriptions import new_item

    existing = {state.get("subscription_item", i)["price"]: i for i in sub["_items"]}
    kept: list[str] = []
    for wanted in phase["items"]:
        item_id = existing.get(wanted["price"])
        if item_id is None:
            item = new_item(state, sub, {"price": wanted["price"], "quantity": wanted.get("quantity")}, None)
            state.put(item)
            kept.append(item["id"])
            continue
        item = dict(state.get("subscription_item", item_id))
        if wanted.get("quantity") is not None and item.get("quantity") is not None:
            item["quantity"] = wanted["quantity"]
        state.put(item)
        kept.append(item_id)
    if kept != sub["_items"]:
        state.put({**sub, "_items": kept})


def follow_schedule(state: StripeState, sub_id: str, now: int) -> None:
    """Called by the billing engine before it bills: phase starts that are due, and the end of the last phase."""
    sub = state.get("subscription", sub_id)
    schedule = state.store.get(KIND, sub.get("schedule") or "")
    if schedule is None or schedule["status"] != "active":
        return
    schedule = dict(schedule)
    last_end = schedule["phases"][-1]["end_date"]
    if now < last_end:
        if sub.get("_schedule_phase_end") is not None and now >= sub["_schedule_phase_end"]:
            _apply(state, schedule, sub, now)
        return
    if schedule["end_behavior"] == "release":
        _release(state, schedule, sub, last_end, preserve_cancel_date=True)
    else:  # the subscription ends at cancel_at = last_end, billed by the engine
        schedule.update(status="completed", completed_at=last_end, current_phase=None)
        state.put(schedule)


def _release(
    state: StripeState, schedule: dict[str, Any], sub: dict[str, Any], at: int, *, preserve_cancel_date: bool
) -> None:
    schedule.update(
        status="released", released_at=at, released_subscription=sub["id"], subscription=None, current_phase=None
    )
    state.put(schedule)
    sub = dict(state.get("subscription", sub["id"]))
    sub["schedule"] = None
    sub.pop("_schedule_phase_end", None)
    if sub.pop("_cancel_by_schedule", False) and not preserve_cancel_date:
        sub["cancel_at"], sub["cancel_at_period_end"] = None, False
    state.put(sub)


def release_schedule(call: ApiCall) -> dict[str, Any]:
    state = call.state
    schedule = dict(state.get(KIND, call.path["schedule"], "schedule"))
    if schedule["status"] not in ("active", "not_started"):
        raise StripeError(400, f"You cannot release a subscription schedule that is {schedule['status']}.")
    sub = state.get("subscription", schedule["subscription"])
    now = state.now_for(sub["customer"])
    _release(state, schedule, sub, now, preserve_cancel_date=bool(call.get("preserve_cancel_date")))
    call.engine.world_due = None
    return public(state.get(KIND, schedule["id"]))


def cancel_schedule(call: ApiCall) -> dict[str, Any]:
    state = call.state
    schedule = dict(state.get(KIND, call.path["schedule"], "schedule"))
    if schedule["status"] not in ("active", "not_started"):
        raise StripeError(400, f"You cannot cancel a subscription schedule that is {schedule['status']}.")
    sub = state.get("subscription", schedule["subscription"])
    now = state.now_for(sub["customer"])
    call.engine.advance(sub["id"])  # bill any period that already ended first
    if state.get("subscription", sub["id"])["status"] in LIVE:
        invoice_now = call.get("invoice_now") is None or bool(call.get("invoice_now"))
        prorate = call.get("prorate") is None or bool(call.get("prorate"))
        state.put({**state.get("subscription", sub["id"]), "canceled_at": now})
        call.engine.end_subscription(sub["id"], now, invoice_now=invoice_now, prorate=prorate)
    mark_canceled(state, schedule["id"], now)
    return public(state.get(KIND, schedule["id"]))


def mark_canceled(state: StripeState, schedule_id: str, at: int) -> None:
    """The schedule of a subscription that was cancelled (through the schedule or directly)."""
    schedule = state.store.get(KIND, schedule_id)
    if schedule is not None and schedule["status"] in ("active", "not_started"):
        state.put({**schedule, "status": "canceled", "canceled_at": at, "current_phase": None})


def retrieve_schedule(call: ApiCall) -> dict[str, Any]:
    return public(call.state.get(KIND, call.path["schedule"], "schedule"))


def list_schedules(call: ApiCall) -> dict[str, Any]:
    items = list(reversed(call.state.all(KIND)))
    if call.get("customer"):
        items = [s for s in items if s["customer"] == call.get("customer")]
    items = created_filter(items, call.get("created"))
    return page([public(s) for s in items], call.params, "/v1/subscription_schedules")
