"""Subscription schedules through the SDK: from_subscription, phases, end_behavior cancel/release, release, cancel."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_world import World, at, customer_on_clock, make_prices, usage


def _start(world: World) -> tuple[Any, str, str, Any]:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.per_unit}, {"price": prices.licensed}]}
    )
    return prices, clock, customer, sub


def _move(world: World, clock: str, instant: int) -> None:
    world.client.v1.test_helpers.test_clocks.advance(clock, params={"frozen_time": instant})


def _phase(prices: Any, start: int, end: int, quantity: int = 1) -> dict[str, Any]:
    return {
        "items": [{"price": prices.per_unit}, {"price": prices.licensed, "quantity": quantity}],
        "start_date": start,
        "end_date": end,
    }


def _invoices(world: World, sub_id: str) -> list[Any]:
    found = world.client.v1.invoices.list(params={"subscription": sub_id, "limit": 100}).data
    return sorted(found, key=lambda i: (i.created, i.id))


def test_from_subscription_mirrors_the_current_period_and_is_one_per_subscription(world: World) -> None:
    c = world.client.v1
    prices, _clock, customer, sub = _start(world)
    schedule = c.subscription_schedules.create(params={"from_subscription": sub.id})
    assert (schedule.status, schedule.end_behavior, schedule.subscription, schedule.customer) == (
        "active",
        "release",
        sub.id,
        customer,
    )
    (phase,) = schedule.phases
    assert (phase.start_date, phase.end_date) == (at(1), at(1, 2))
    assert sorted(str(i.price) for i in phase.items) == sorted([prices.per_unit, prices.licensed])
    assert schedule.current_phase is not None and schedule.current_phase.end_date == at(1, 2)
    assert c.subscriptions.retrieve(sub.id).schedule == schedule.id
    assert c.subscription_schedules.retrieve(schedule.id).id == schedule.id
    assert [s.id for s in c.subscription_schedules.list(params={"customer": customer}).data] == [schedule.id]
    with pytest.raises(stripe.InvalidRequestError, match="already attached"):
        c.subscription_schedules.create(params={"from_subscription": sub.id})
    with pytest.raises(stripe.InvalidRequestError, match="from_subscription"):
        c.subscription_schedules.create(params={"from_subscription": sub.id, "end_behavior": "cancel"})
    # while the schedule manages it, cancellation is the schedule's
    with pytest.raises(stripe.InvalidRequestError, match="managed by the subscription schedule"):
        c.subscriptions.update(sub.id, params={"cancel_at_period_end": True})


def test_end_behavior_cancel_mid_period_ends_with_a_final_invoice(world: World) -> None:
    c = world.client.v1
    prices, clock, customer, sub = _start(world)
    schedule = c.subscription_schedules.create(params={"from_subscription": sub.id})
    updated = c.subscription_schedules.update(
        schedule.id,
        params={
            "end_behavior": "cancel",
            "phases": [_phase(prices, at(1), at(1, 2)), _phase(prices, at(1, 2), at(15, 2))],
        },
    )
    assert [(p.start_date, p.end_date) for p in updated.phases] == [(at(1), at(1, 2)), (at(1, 2), at(15, 2))]
    assert c.subscriptions.retrieve(sub.id).cancel_at == at(15, 2)
    _move(world, clock, at(10, 2))
    usage(world.client, "t.compute", customer, 10, "sched-1", at(10, 2))
    _move(world, clock, at(20, 2))
    ended = c.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", at(15, 2))
    final = _invoices(world, sub.id)[-1]
    assert (final.period_start, final.period_end, final.total) == (at(1, 2), at(15, 2), 30)  # 10 x 3c, no fee
    done = c.subscription_schedules.retrieve(schedule.id)
    assert (done.status, done.completed_at, done.current_phase) == ("completed", at(15, 2), None)


def test_end_behavior_cancel_at_a_period_end_bills_the_last_cycle_without_a_new_fee(world: World) -> None:
    c = world.client.v1
    prices, clock, customer, sub = _start(world)
    schedule = c.subscription_schedules.create(params={"from_subscription": sub.id})
    c.subscription_schedules.update(
        schedule.id, params={"end_behavior": "cancel", "phases": [_phase(prices, at(1), at(1, 2))]}
    )
    usage(world.client, "t.compute", customer, 5, "sched-2", at(1))
    _move(world, clock, at(5, 2))
    cycle = [i for i in _invoices(world, sub.id) if i.billing_reason == "subscription_cycle"]
    assert [i.total for i in cycle] == [15]
    assert c.subscriptions.retrieve(sub.id).ended_at == at(1, 2)


def test_a_second_phase_changes_the_items_when_it_starts(world: World) -> None:
    c = world.client.v1
    prices, clock, _customer, sub = _start(world)
    schedule = c.subscription_schedules.create(params={"from_subscription": sub.id})
    c.subscription_schedules.update(
        schedule.id,
        params={"phases": [_phase(prices, at(1), at(1, 2)), _phase(prices, at(1, 2), at(1, 4), quantity=3)]},
    )
    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        c.subscription_schedules.update(schedule.id, params={"phases": [_phase(prices, at(2), at(1, 2))]})
    _move(world, clock, at(2, 2))
    licensed = [i for i in c.subscriptions.retrieve(sub.id)["items"].data if i.price.id == prices.licensed]
    assert [i.quantity for i in licensed] == [3]
    (cycle,) = [i for i in _invoices(world, sub.id) if i.billing_reason == "subscription_cycle"]
    assert cycle.total == 3 * 9900  # the new phase's fee, in advance
    assert c.subscription_schedules.retrieve(schedule.id).current_phase.start_date == at(1, 2)  # type: ignore[union-attr]
    _move(world, clock, at(2, 4))  # the last phase ended with end_behavior release: the subscription runs on
    released = c.subscription_schedules.retrieve(schedule.id)
    assert (released.status, released.released_subscription, released.subscription) == ("released", sub.id, None)
    assert c.subscriptions.retrieve(sub.id).status == "active"


def test_release_detaches_and_cancel_ends_the_subscription_now(world: World) -> None:
    c = world.client.v1
    _prices, clock, customer, sub = _start(world)
    schedule = c.subscription_schedules.create(params={"from_subscription": sub.id})
    c.subscription_schedules.update(schedule.id, params={"end_behavior": "cancel"})
    assert c.subscriptions.retrieve(sub.id).cancel_at == at(1, 2)
    released = c.subscription_schedules.release(schedule.id)
    assert (released.status, released.released_at, released.released_subscription) == ("released", at(1), sub.id)
    after = c.subscriptions.retrieve(sub.id)
    assert (after.schedule, after.cancel_at) == (None, None)  # the schedule's cancel date goes with it
    with pytest.raises(stripe.InvalidRequestError):
        c.subscription_schedules.update(schedule.id, params={"end_behavior": "release"})

    second = c.subscription_schedules.create(params={"from_subscription": sub.id})
    _move(world, clock, at(10))
    usage(world.client, "t.compute", customer, 4, "sched-3", at(9))
    canceled = c.subscription_schedules.cancel(second.id)
    assert (canceled.status, canceled.canceled_at) == ("canceled", at(10))
    ended = c.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", at(10))
    final = _invoices(world, sub.id)[-1]
    # invoice_now and prorate by default: the open usage (4 x 3c), less 22 of 31 unused days of the fee
    assert (final.period_end, final.total) == (at(10), 12 - 7026)
