"""Hand-computed billing scenarios, to the cent, on test clocks (frozen time makes every period exact)."""

from __future__ import annotations

from typing import Any

import pytest
from billmig_local.emulators.stripe import advance_test_clocks
from stripe_world import World, at, customer_on_clock, make_prices, usage


def _cycle_invoices(world: World, sub_id: str, reason: str = "subscription_cycle") -> list[Any]:
    invoices = world.client.v1.invoices.list(params={"subscription": sub_id, "limit": 100}).data
    return sorted((i for i in invoices if i.billing_reason == reason), key=lambda i: i.created)


def _move(world: World, clock: str, instant: int) -> None:
    world.client.v1.test_helpers.test_clocks.advance(clock, params={"frozen_time": instant})


def _lines(world: World, invoice_id: str) -> dict[str, tuple[int, int]]:
    """price id -> (quantity, amount)."""
    lines = world.client.v1.invoices.line_items.list(invoice_id).data
    out = {}
    for line in lines:
        assert line.pricing is not None and line.pricing.price_details is not None
        out[str(line.pricing.price_details.price)] = (line.quantity, line.amount)
    return out


def test_tiered_pricing_and_licensed_fee_on_the_cycle_invoice(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices.graduated}, {"price": prices.volume}, {"price": prices.licensed}],
        }
    )
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (at(1), at(1, 2))
    created = _cycle_invoices(world, sub.id, "subscription_create")
    assert [i.total for i in created] == [9900]  # licensed in advance

    _move(world, clock, at(5))
    usage(world.client, "t.api", customer, 7000, "api-1", at(5))
    usage(world.client, "t.storage", customer, 250, "storage-1", at(4))
    _move(world, clock, at(20))
    usage(world.client, "t.api", customer, 5500, "api-2", at(20))
    usage(world.client, "t.api", customer, 99, "api-before", at(1) - 10)  # before the period: not billed
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2) + 3600})

    [cycle] = _cycle_invoices(world, sub.id)
    assert (cycle.period_start, cycle.period_end) == (at(1), at(1, 2))
    assert cycle.parent is not None and cycle.parent.subscription_details is not None
    assert cycle.parent.subscription_details.subscription == sub.id
    # graduated 12,500: 1,000 x 0 + 9,000 x 2 + 2,500 x 1 = 20,500; volume 250: 250 x 3 + 100 = 850
    assert _lines(world, cycle.id) == {
        prices.graduated: (12500, 20500),
        prices.volume: (250, 850),
        prices.licensed: (1, 9900),
    }
    assert (cycle.subtotal, cycle.total, cycle.amount_due, cycle.status) == (31250, 31250, 31250, "paid")
    renewed = c.subscriptions.retrieve(sub.id)["items"].data[0]
    assert (renewed.current_period_start, renewed.current_period_end) == (at(1, 2), at(1, 3))


def test_credits_of_two_categories_apply_by_priority(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.graduated}, {"price": prices.per_unit}]}
    )

    def grant(value: int, category: str, priority: int, **extra: Any) -> str:
        params = {
            "customer": customer,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": category,
            "priority": priority,
            **extra,
        }
        return c.billing.credit_grants.create(params=params).id  # type: ignore[arg-type]

    paid = grant(15000, "paid", 50)
    promotional = grant(500, "promotional", 10)
    scoped = grant(700, "promotional", 0, applicability_config={"scope": {"prices": [{"id": prices.per_unit}]}})
    expired = grant(9999, "promotional", 0, expires_at=at(20))
    voided = grant(8888, "promotional", 0)
    c.billing.credit_grants.void_grant(voided)

    _move(world, clock, at(3))
    usage(world.client, "t.api", customer, 12500, "a", at(3))  # 20,500
    usage(world.client, "t.compute", customer, 100, "b", at(3))  # 300
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2)})

    [cycle] = _cycle_invoices(world, sub.id)
    assert cycle.subtotal == 20800
    # lines in order: api 20,500 then compute 300. Priority 0 scoped (compute only): 300 of 700. Then priority 10
    # promotional 500 on api, then priority 50 paid 15,000 on api. Expired and voided grants do not apply.
    assert cycle.total_pretax_credit_amounts is not None
    assert [a.amount for a in cycle.total_pretax_credit_amounts] == [300, 500, 15000]
    assert cycle.total == 20800 - 300 - 500 - 15000 == 5000
    lines = c.invoices.line_items.list(cycle.id).data
    credited = {
        str(line.pricing.price_details.price): [a.amount for a in line.pretax_credit_amounts or []] for line in lines
    }  # type: ignore[union-attr]
    assert credited == {prices.graduated: [500, 15000], prices.per_unit: [300]}

    def balance(grant_id: str) -> tuple[int, int]:
        summary = c.billing.credit_balance_summary.retrieve(
            params={"customer": customer, "filter": {"type": "credit_grant", "credit_grant": grant_id}}
        )
        [entry] = summary.balances
        return entry.available_balance.monetary.value, entry.ledger_balance.monetary.value  # type: ignore[union-attr]

    assert balance(paid) == (0, 0)
    assert balance(promotional) == (0, 0)
    assert balance(scoped) == (400, 400)
    assert balance(expired) == (0, 9999)  # expired: out of the available balance, still on the ledger
    assert balance(voided) == (0, 0)
    metered = c.billing.credit_balance_summary.retrieve(
        params={
            "customer": customer,
            "filter": {"type": "applicability_scope", "applicability_scope": {"price_type": "metered"}},
        }
    )
    assert metered.balances[0].available_balance.monetary.value == 400  # type: ignore[union-attr]

    debits = c.billing.credit_balance_transactions.list(params={"customer": customer, "credit_grant": paid}).data
    debit = next(t for t in debits if t.type == "debit")
    assert debit.debit is not None and debit.debit.credits_applied is not None
    assert debit.debit.credits_applied.invoice == cycle.id
    assert debit.debit.amount.monetary.value == 15000  # type: ignore[union-attr]
    assert {t.type for t in debits} == {"credit", "debit"}


def test_threshold_invoice_then_the_rest_at_period_end(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.per_unit}], "billing_thresholds": {"amount_gte": 1000}}
    )
    assert sub.billing_thresholds is not None and sub.billing_thresholds.amount_gte == 1000
    usage(world.client, "t.compute", customer, 300, "t1", at(1))  # 900: below
    assert _cycle_invoices(world, sub.id, "subscription_threshold") == []
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(10)})
    usage(world.client, "t.compute", customer, 50, "t2", at(10))  # 1,050: reached
    [threshold] = _cycle_invoices(world, sub.id, "subscription_threshold")
    assert (threshold.total, threshold.created, threshold.period_start) == (1050, at(10), at(1))
    assert threshold.threshold_reason is not None and threshold.threshold_reason.amount_gte == 1000
    assert _lines(world, threshold.id) == {prices.per_unit: (350, 1050)}

    _move(world, clock, at(20))
    usage(world.client, "t.compute", customer, 100, "t3", at(20))
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2)})
    [cycle] = _cycle_invoices(world, sub.id)
    assert _lines(world, cycle.id) == {prices.per_unit: (100, 300)}  # only what the threshold invoice left


def test_cancel_with_invoice_now_bills_open_usage_without_proration(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.per_unit}, {"price": prices.licensed}]}
    )
    _move(world, clock, at(5))
    usage(world.client, "t.compute", customer, 40, "u1", at(5))
    _move(world, clock, at(16))
    canceled = c.subscriptions.cancel(sub.id, params={"invoice_now": True, "prorate": False})
    assert (canceled.status, canceled.ended_at, canceled.canceled_at) == ("canceled", at(16), at(16))
    invoices = c.invoices.list(params={"subscription": sub.id}).data
    final = invoices[0]
    assert final.created == at(16) and (final.period_start, final.period_end) == (at(1), at(16))
    assert _lines(world, final.id) == {prices.per_unit: (40, 120)}  # no proration line for the licensed fee
    assert final.total == 120 and final.status == "paid"
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 3)})
    assert len(c.invoices.list(params={"subscription": sub.id}).data) == len(invoices)  # nothing after the end


def test_cancel_without_invoice_now_drops_open_usage(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    usage(world.client, "t.compute", customer, 40, "u1", at(1))
    c.subscriptions.cancel(sub.id)
    assert [i.billing_reason for i in c.invoices.list(params={"subscription": sub.id}).data] == ["subscription_create"]
    assert c.subscriptions.list(params={"customer": customer}).data == []
    assert [s.id for s in c.subscriptions.list(params={"customer": customer, "status": "canceled"}).data] == [sub.id]


def test_cancel_with_proration_credits_unused_licensed_time(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1, 4))  # April: 30 days
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.licensed}]})
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(21, 4)})
    c.subscriptions.cancel(sub.id, params={"invoice_now": True, "prorate": True})
    final = c.invoices.list(params={"subscription": sub.id}).data[0]
    assert _lines(world, final.id) == {prices.licensed: (1, -3300)}  # 10 of 30 days unused: -9900 / 3
    assert final.total == -3300 and final.amount_due == 0


def test_cancel_at_period_end_ends_after_the_last_cycle_invoice(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.per_unit}, {"price": prices.licensed}]}
    )
    updated = c.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True and updated.cancel_at == at(1, 2) and updated.status == "active"
    _move(world, clock, at(2))
    usage(world.client, "t.compute", customer, 10, "x", at(2))
    _move(world, clock, at(15, 2))
    [cycle] = _cycle_invoices(world, sub.id)
    assert _lines(world, cycle.id) == {prices.per_unit: (10, 30)}  # no licensed fee for a period that never starts
    assert (cycle.period_end, cycle.status) == (at(1, 2), "paid")
    ended = c.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at, ended.canceled_at, ended.latest_invoice) == (
        "canceled",
        at(1, 2),
        at(1),  # when it was asked for
        cycle.id,
    )
    assert ended.cancellation_details is not None and ended.cancellation_details.reason == "cancellation_requested"
    _move(world, clock, at(15, 3))  # nothing after the end
    assert [i.id for i in c.invoices.list(params={"subscription": sub.id}).data if i.created > at(1, 2)] == []


def test_no_payment_method_leaves_the_invoice_open_and_the_subscription_past_due(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1), payment_method=False)
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    _move(world, clock, at(2))
    usage(world.client, "t.compute", customer, 10, "x", at(2))
    _move(world, clock, at(1, 2))
    [cycle] = _cycle_invoices(world, sub.id)
    assert (cycle.status, cycle.amount_remaining) == ("open", 30)
    assert c.subscriptions.retrieve(sub.id).status == "past_due"
    assert [s.id for s in c.subscriptions.list(params={"status": "past_due", "customer": customer}).data] == [sub.id]


def test_trial_then_active(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices.licensed}, {"price": prices.per_unit}],
            "trial_period_days": 14,
        }
    )
    assert (sub.status, sub.trial_end) == ("trialing", at(15))
    assert _cycle_invoices(world, sub.id, "subscription_create")[0].total == 0
    _move(world, clock, at(5))
    usage(world.client, "t.compute", customer, 100, "trial-usage", at(5))  # during the trial: shown, not charged
    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(15)})
    after = c.subscriptions.retrieve(sub.id)
    assert after.status == "active"
    assert (after["items"].data[0].current_period_start, after["items"].data[0].current_period_end) == (
        at(15),
        at(15, 2),
    )
    [first_paid] = _cycle_invoices(world, sub.id)
    assert _lines(world, first_paid.id) == {prices.per_unit: (100, 0), prices.licensed: (1, 9900)}
    assert first_paid.total == 9900


def test_preview_shows_the_next_invoice_without_booking_credits(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    c.billing.credit_grants.create(
        params={
            "customer": customer,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 100}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "promotional",
        }
    )
    _move(world, clock, at(2))
    usage(world.client, "t.compute", customer, 50, "p", at(2))
    preview = c.invoices.create_preview(params={"customer": customer, "subscription": sub.id})
    assert (preview.subtotal, preview.total) == (150, 50)
    assert c.billing.credit_balance_transactions.list(params={"customer": customer}).data[0].type == "credit"
    assert len(c.billing.credit_balance_transactions.list(params={"customer": customer}).data) == 1


def test_world_clock_moves_bill_subscriptions_off_test_clocks_and_advance_test_clocks(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    customer = c.customers.create(
        params={"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    ).id
    anchor = at(1, 2)
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.per_unit}], "billing_cycle_anchor": anchor}
    )
    clock, clocked = customer_on_clock(world.client, at(1))
    clocked_sub = c.subscriptions.create(params={"customer": clocked, "items": [{"price": prices.per_unit}]})
    usage(world.client, "t.compute", customer, 7, "w1", int(world.clock.now()))
    _move(world, clock, at(3))
    usage(world.client, "t.compute", clocked, 9, "w2", at(3))

    moved = 40 * 86400
    world.clock.advance(moved)
    assert [i.total for i in _cycle_invoices(world, sub.id)] == [21]
    before = int(world.clock.now())
    assert advance_test_clocks(world.emulator.url, moved) == 1
    # to the world's instant, not by `moved` from where the clock was (Jan 3, ahead of the world then)
    assert before <= c.test_helpers.test_clocks.retrieve(clock).frozen_time <= int(world.clock.now())
    assert [i.total for i in _cycle_invoices(world, clocked_sub.id)] == [27]
    assert advance_test_clocks(world.emulator.url, 0) == 0


def test_test_clocks_catch_up_with_the_world_however_long_ago_they_were_made(world: World) -> None:
    c = world.client.v1
    # made while the world was at Jan 1 plus some real time; the world then jumps to Jan 31 23:59:30
    behind, _customer = customer_on_clock(world.client, int(world.clock.now()) - 3600)
    ahead, _other = customer_on_clock(world.client, at(1, 3))
    world.set_time(at(31, 1) + 86400 - 30)
    assert advance_test_clocks(world.emulator.url) == 1
    frozen = c.test_helpers.test_clocks.retrieve(behind).frozen_time
    assert at(1, 2) - 30 <= frozen <= int(world.clock.now())
    assert c.test_helpers.test_clocks.retrieve(ahead).frozen_time == at(1, 3)  # never moved back


@pytest.mark.parametrize("formula, expected", [("sum", 12), ("count", 3), ("last", 2)])
def test_meter_aggregations_and_event_summaries(world: World, formula: str, expected: int) -> None:
    c = world.client.v1
    meter = c.billing.meters.create(
        params={
            "display_name": formula,
            "event_name": f"agg.{formula}",
            "default_aggregation": {"formula": formula},  # type: ignore[typeddict-item]
            "customer_mapping": {"type": "by_id", "event_payload_key": "account"},
            "value_settings": {"event_payload_key": "units"},
        }
    )
    _clock, customer = customer_on_clock(world.client, at(10))
    for n, (value, ts) in enumerate([(4, at(2)), (6, at(3)), (2, at(4))]):
        c.billing.meter_events.create(
            params={
                "event_name": f"agg.{formula}",
                "payload": {"account": customer, "units": str(value)},
                "identifier": f"{formula}-{n}",
                "timestamp": ts,
            }
        )
    summaries = c.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": at(1), "end_time": at(10)}
    ).data
    assert [s.aggregated_value for s in summaries] == [expected]
    daily = c.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": at(1), "end_time": at(4), "value_grouping_window": "day"}
    ).data
    assert len(daily) == 3


def test_decimal_unit_amounts_round_half_up_and_transform_quantity_packs(world: World) -> None:
    c = world.client.v1
    product = c.products.create(params={"name": "Packs"}).id
    meter = c.billing.meters.create(
        params={"display_name": "packs", "event_name": "t.packs", "default_aggregation": {"formula": "sum"}}
    ).id
    recurring = {"interval": "month", "usage_type": "metered", "meter": meter}
    half_cent = c.prices.create(
        params={"product": product, "currency": "usd", "unit_amount_decimal": "0.5", "recurring": recurring}  # type: ignore[typeddict-item]
    ).id
    per_thousand = c.prices.create(
        params={
            "product": product,
            "currency": "usd",
            "unit_amount": 7,
            "transform_quantity": {"divide_by": 1000, "round": "up"},
            "recurring": recurring,  # type: ignore[typeddict-item]
        }
    ).id
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": half_cent}, {"price": per_thousand}]}
    )
    _move(world, clock, at(2))
    usage(world.client, "t.packs", customer, 2001, "p1", at(2))
    _move(world, clock, at(1, 2))
    [cycle] = _cycle_invoices(world, sub.id)
    # 2,001 x 0.5c = 1,000.5c -> 1,001c (half up); 2,001 units in packs of 1,000 rounded up = 3 packs x 7c = 21c
    assert _lines(world, cycle.id) == {half_cent: (2001, 1001), per_thousand: (2001, 21)}


def test_cancel_at_mid_period_bills_the_open_usage_then_ends(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    assert c.subscriptions.update(sub.id, params={"cancel_at": at(10)}).cancel_at == at(10)
    _move(world, clock, at(5))
    usage(world.client, "t.compute", customer, 20, "c1", at(5))
    _move(world, clock, at(20))
    ended = c.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", at(10))
    final = c.invoices.list(params={"subscription": sub.id}).data[0]
    assert (final.period_start, final.period_end, final.total) == (at(1), at(10), 60)


def test_a_grant_not_yet_effective_does_not_apply(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    later = c.billing.credit_grants.create(
        params={
            "customer": customer,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 1000}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "promotional",
            "effective_at": at(1, 3),
        }
    )
    _move(world, clock, at(2))
    usage(world.client, "t.compute", customer, 100, "e1", at(2))
    _move(world, clock, at(1, 2))
    [cycle] = _cycle_invoices(world, sub.id)
    assert (cycle.total, cycle.total_pretax_credit_amounts) == (300, [])
    summary = c.billing.credit_balance_summary.retrieve(
        params={"customer": customer, "filter": {"type": "credit_grant", "credit_grant": later.id}}
    )
    assert summary.balances[0].available_balance.monetary.value == 0  # type: ignore[union-attr]


def test_real_time_passing_a_period_end_bills_on_the_next_request(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    customer = c.customers.create(
        params={"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    ).id
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.licensed}], "billing_cycle_anchor": at(1, 2)}
    )
    # The world clock flows like real time between `billmig local clock` moves; stand in for a month of it passing
    # without a move (no listener runs), as a long-lived `billmig local up` would see.
    world.clock._offset += 35 * 86400
    assert [i.total for i in _cycle_invoices(world, sub.id)] == [9900]


def test_a_billing_cycle_anchor_after_the_start_prorates_the_first_period(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    anchor = at(15, hour=13)
    sub = c.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices.licensed}, {"price": prices.per_unit}],
            "billing_cycle_anchor": anchor,
        }
    )
    assert (sub.billing_cycle_anchor, sub.start_date) == (anchor, at(1))
    assert {(i.current_period_start, i.current_period_end) for i in sub["items"].data} == {(at(1), anchor)}
    # 14 days 13 hours of the 31-day cycle Dec 15 13:00 - Jan 15 13:00: 9900 x 349 / 744 = 4643.95
    (first,) = _cycle_invoices(world, sub.id, "subscription_create")
    assert _lines(world, first.id) == {prices.licensed: (1, 4644)}
    _move(world, clock, at(10))
    usage(world.client, "t.compute", customer, 10, "anchored", at(10))
    _move(world, clock, anchor)
    (cycle,) = _cycle_invoices(world, sub.id)
    assert (cycle.period_start, cycle.period_end) == (at(1), anchor)
    assert _lines(world, cycle.id) == {prices.licensed: (1, 9900), prices.per_unit: (10, 30)}
    item = c.subscriptions.retrieve(sub.id)["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (anchor, at(15, 2, hour=13))


def test_billing_cycle_anchor_config_and_no_proration(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(10, 2))
    sub = c.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices.licensed}],
            "billing_cycle_anchor_config": {"day_of_month": 31, "hour": 6},
            "proration_behavior": "none",
        }
    )
    # the 31st does not exist in February: its last day, at 06:00 UTC
    assert sub.billing_cycle_anchor == at(28, 2, hour=6)
    assert sub.billing_cycle_anchor_config is not None
    assert (sub.billing_cycle_anchor_config.day_of_month, sub.billing_cycle_anchor_config.hour) == (31, 6)
    (first,) = _cycle_invoices(world, sub.id, "subscription_create")
    assert first.total == 0  # proration_behavior none: the days up to the anchor are free


@pytest.mark.parametrize(
    "params, message",
    [
        ({"billing_cycle_anchor": at(1) - 86400}, "in the past"),
        ({"billing_cycle_anchor": at(2, 2)}, "next natural billing date"),
        ({"billing_cycle_anchor": at(10), "billing_cycle_anchor_config": {"day_of_month": 10}}, "only specify one"),
    ],
)
def test_billing_cycle_anchors_stripe_refuses(world: World, params: dict[str, Any], message: str) -> None:
    import stripe

    prices = make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(1))
    with pytest.raises(stripe.InvalidRequestError) as error:
        world.client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"price": prices.licensed}], **params}  # type: ignore[typeddict-item]
        )
    assert message in str(error.value.user_message)
