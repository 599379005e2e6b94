"""Hand-computed invoices: every amount below is worked out by hand in the comments, to the cent."""

from __future__ import annotations

from typing import Any

import httpx
import metronome
import pytest
from billmig_local.emulators.metronome.app import BILLABLE_STATUS_PATH, STRIPE_DELIVERIES_PATH
from metronome_world import (
    Catalogue,
    World,
    api_calls,
    at,
    ingest,
    llm,
    new_customer,
    set_billable_status,
)

FOREVER = at(1, 1).replace(year=2031)


def contract(world: World, cat: Catalogue, customer_id: str, **extra: Any) -> str:
    return world.client.v1.contracts.create(
        customer_id=customer_id,
        starting_at=at(1),
        rate_card_id=cat.rate_card_id,
        **{"usage_statement_schedule": {"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"}, **extra},
    ).data.id


def usage_invoices(world: World, customer_id: str) -> list[Any]:
    return [i for i in world.client.v1.customers.invoices.list(customer_id=customer_id) if i.type == "USAGE"]


def lines_by_name(invoice: Any) -> dict[str, Any]:
    return {(li.name, str(li.pricing_group_values)): li for li in invoice.line_items}


def test_tiered_rate_and_unmatched_pricing_group_value(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "acme")
    contract(world, catalogue, customer)
    world.set_time(at(20))
    ingest(
        world.client,
        [
            *api_calls("acme", "call", at(10), 75),
            llm("acme", "t1", at(11), "gpt-4", 1000),
            llm("acme", "t2", at(12), "small", 301),
            llm("acme", "t3", at(13), "GPT-4", 500),  # no rate for "GPT-4" (case-sensitive): usage without a charge
        ],
    )
    (invoice,) = usage_invoices(world, customer)
    assert invoice.status == "DRAFT"
    lines = lines_by_name(invoice)
    # tiers: 10 x 20c + 40 x 15c + 25 x 10c = 200 + 600 + 250 = 1050
    assert lines[("API calls", "None")].total == 1050
    assert lines[("API calls", "None")].quantity == 75
    # 1000 tokens x 2c = 2000; 301 x 0.5c = 150.5 -> 151 (half up)
    assert lines[("Tokens", "{'model': 'gpt-4'}")].total == 2000
    assert lines[("Tokens", "{'model': 'small'}")].total == 151
    assert not any(li.pricing_group_values == {"model": "GPT-4"} for li in invoice.line_items)
    assert invoice.total == 1050 + 2000 + 151

    # the unmatched usage is still visible where the migration diagnoses it
    groups = {
        g.group_value: g.value
        for g in world.client.v1.usage.list_with_groups(
            customer_id=customer,
            billable_metric_id=catalogue.metric_id,
            window_size="NONE",
            group_key=["model"],
            starting_on=at(1),
            ending_before=at(1, 2),
        )
    }
    assert groups == {"gpt-4": 1000, "small": 301, "GPT-4": 500}
    (found,) = world.client.v1.usage.search(transaction_ids=["t3"])
    assert found.matched_customer is not None and found.matched_customer.id == customer
    assert [m.id for m in found.matched_billable_metrics or []] == [catalogue.metric_id]

    # after the period and its 24 h grace the invoice is FINALIZED and frozen
    world.set_time(at(2, 2, hour=1))
    invoices = usage_invoices(world, customer)
    assert [(i.status, i.total) for i in invoices] == [("FINALIZED", 3201), ("DRAFT", 0)]
    # a late (backdated) event does not change a finalized invoice
    ingest(world.client, [llm("acme", "late", at(20), "gpt-4", 100)])
    assert usage_invoices(world, customer)[0].total == 3201


def test_commit_and_credit_draw_down_by_priority(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "prio")
    contract(
        world,
        catalogue,
        customer,
        commits=[
            {
                "type": "PREPAID",
                "product_id": catalogue.commit_product_id,
                "priority": 1,
                "name": "Paid commit",
                "access_schedule": {
                    "schedule_items": [{"amount": 1000, "starting_at": at(1), "ending_before": FOREVER}]
                },
                "invoice_schedule": {"schedule_items": [{"timestamp": at(1), "amount": 1000}], "do_not_invoice": True},
            }
        ],
        credits=[
            {
                "product_id": catalogue.credit_product_id,
                "priority": 2,
                "name": "Promo credit",
                "access_schedule": {
                    "schedule_items": [{"amount": 5000, "starting_at": at(1), "ending_before": FOREVER}]
                },
            }
        ],
    )
    world.set_time(at(20))
    ingest(world.client, [llm("prio", "p1", at(10), "gpt-4", 1500)])  # 1500 x 2c = 3000
    invoices = world.client.v1.customers.invoices.list(customer_id=customer).data
    assert [i.type for i in invoices] == ["USAGE"]  # do_not_invoice: no scheduled invoice
    (invoice,) = invoices
    applied = {li.name: li.total for li in invoice.line_items if li.commit_id}
    # priority 1 (the commit) is used up first, then the credit covers the remaining 2000
    assert applied == {"Paid commit": -1000, "Promo credit": -2000}
    assert invoice.total == 0
    balances = {
        b.name: b.balance
        for b in world.client.v1.contracts.list_balances(
            customer_id=customer, include_contract_balances=True, include_balance=True
        )
    }
    assert balances == {"Paid commit": 0, "Promo credit": 3000}


def test_equal_priority_burns_zero_cost_credit_before_paid_commit(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "tie")
    contract(
        world,
        catalogue,
        customer,
        commits=[
            {
                "type": "PREPAID",
                "product_id": catalogue.commit_product_id,
                "priority": 1,
                "name": "Paid commit",
                "access_schedule": {
                    "schedule_items": [{"amount": 1000, "starting_at": at(1), "ending_before": FOREVER}]
                },
                "invoice_schedule": {"schedule_items": [{"timestamp": at(1), "amount": 1000}], "do_not_invoice": True},
            }
        ],
        credits=[
            {
                "product_id": catalogue.credit_product_id,
                "priority": 1,
                "name": "Promo credit",
                "access_schedule": {
                    "schedule_items": [{"amount": 5000, "starting_at": at(1), "ending_before": FOREVER}]
                },
            }
        ],
    )
    world.set_time(at(20))
    ingest(world.client, [llm("tie", "e1", at(10), "gpt-4", 1500)])  # 3000
    (invoice,) = usage_invoices(world, customer)
    assert {li.name: li.total for li in invoice.line_items if li.commit_id} == {"Promo credit": -3000}
    assert invoice.total == 0


def test_expiring_access_segment_only_covers_usage_inside_it(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "exp")
    contract_id = contract(
        world,
        catalogue,
        customer,
        credits=[
            {
                "product_id": catalogue.credit_product_id,
                "priority": 1,
                "name": "Expiring credit",
                "access_schedule": {
                    "schedule_items": [{"amount": 5000, "starting_at": at(1), "ending_before": at(15)}]
                },
            }
        ],
    )
    world.set_time(at(21))
    ingest(
        world.client,
        [
            llm("exp", "x1", at(10), "gpt-4", 1500),  # 3000, inside the segment: covered
            llm("exp", "x2", at(20), "gpt-4", 2000),  # 4000, after it expired: not covered
        ],
    )
    (invoice,) = usage_invoices(world, customer)
    assert {li.name: li.total for li in invoice.line_items if li.commit_id} == {"Expiring credit": -3000}
    assert invoice.total == 3000 + 4000 - 3000
    got = world.client.v2.contracts.retrieve(
        customer_id=customer, contract_id=contract_id, include_ledgers=True, include_balance=True
    ).data
    (credit,) = got.credits or []
    assert credit.balance == 0
    assert [(e.type, e.amount) for e in credit.ledger or []] == [
        ("CREDIT_SEGMENT_START", 5000),
        ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", -3000),
        ("CREDIT_EXPIRATION", -2000),
    ]


def test_specifiers_limit_a_credit_to_one_pricing_group_value(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "spec")
    contract(
        world,
        catalogue,
        customer,
        credits=[
            {
                "product_id": catalogue.credit_product_id,
                "priority": 1,
                "name": "Small-model credit",
                "specifiers": [{"product_id": catalogue.tokens_product_id, "pricing_group_values": {"model": "small"}}],
                "access_schedule": {
                    "schedule_items": [{"amount": 10000, "starting_at": at(1), "ending_before": FOREVER}]
                },
            }
        ],
    )
    world.set_time(at(20))
    ingest(world.client, [llm("spec", "s1", at(10), "gpt-4", 100), llm("spec", "s2", at(10), "small", 1000)])
    (invoice,) = usage_invoices(world, customer)
    # gpt-4: 100 x 2c = 200 (not covered); small: 1000 x 0.5c = 500 (covered)
    assert {li.name: li.total for li in invoice.line_items if li.commit_id} == {"Small-model credit": -500}
    assert invoice.total == 200


def test_no_usage_invoices_before_invoice_generation_starting_at(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "gen")
    contract(
        world,
        catalogue,
        customer,
        usage_statement_schedule={
            "frequency": "MONTHLY",
            "day": "FIRST_OF_MONTH",
            "invoice_generation_starting_at": at(1, 2),
        },
    )
    world.set_time(at(20))
    ingest(world.client, [llm("gen", "g1", at(10), "gpt-4", 100)])
    assert usage_invoices(world, customer) == []
    world.set_time(at(10, 2))
    ingest(world.client, [llm("gen", "g2", at(5, 2), "gpt-4", 100)])
    (invoice,) = usage_invoices(world, customer)
    assert (invoice.status, invoice.start_timestamp, invoice.total) == ("DRAFT", at(1, 2), 200)


def test_billable_status_per_period_and_delivery_to_stripe(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "bill", stripe_customer="cus_bill")
    contract(
        world,
        catalogue,
        customer,
        billing_provider_configuration={"billing_provider": "stripe", "delivery_method": "direct_to_billing_provider"},
    )
    set_billable_status(world.client, customer, "unbillable", at(1))
    world.set_time(at(20))
    ingest(world.client, [llm("bill", "b1", at(10), "gpt-4", 100)])
    # cutover on Feb 1, decided in January (a future effective_at)
    reply = set_billable_status(world.client, customer, "billable", at(1, 2))
    assert reply == {"data": {"id": customer, "current_billable_status": "unbillable"}}
    world.set_time(at(10, 2))
    ingest(world.client, [llm("bill", "b2", at(5, 2), "gpt-4", 300)])
    world.set_time(at(3, 3))
    jan, feb, _march = usage_invoices(world, customer)
    assert (jan.status, jan.billable_status, jan.total, jan.external_invoice) == ("FINALIZED", "unbillable", 200, None)
    assert (feb.status, feb.billable_status, feb.total) == ("FINALIZED", "billable", 600)
    assert feb.external_invoice is not None and feb.external_invoice.billing_provider_type == "stripe"
    status = world.client.v1.customers.retrieve(customer_id=customer).data.current_billable_status
    assert status is not None and (status.value, status.effective_at) == ("billable", at(1, 2))
    # never before the last finalized invoice (February ended Mar 1)
    with pytest.raises(metronome.BadRequestError) as error:
        set_billable_status(world.client, customer, "unbillable", at(15, 2))
    assert "effective_at" in error.value.body["message"]


def test_prepaid_commit_with_invoice_schedule_issues_a_scheduled_invoice(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "sched")
    contract(
        world,
        catalogue,
        customer,
        commits=[
            {
                "type": "PREPAID",
                "product_id": catalogue.commit_product_id,
                "priority": 1,
                "name": "Annual prepay",
                "access_schedule": {
                    "schedule_items": [{"amount": 10000, "starting_at": at(1), "ending_before": FOREVER}]
                },
                "invoice_schedule": {"schedule_items": [{"timestamp": at(5), "amount": 10000}]},
            }
        ],
    )
    (scheduled,) = world.client.v1.customers.invoices.list(customer_id=customer, type="SCHEDULED").data
    assert (scheduled.status, scheduled.total) == ("DRAFT", 10000)
    world.set_time(at(6))
    (scheduled,) = world.client.v1.customers.invoices.list(customer_id=customer, type="SCHEDULED").data
    assert (scheduled.status, scheduled.total, scheduled.issued_at) == ("FINALIZED", 10000, at(5))
    assert scheduled.line_items[0].product_id == catalogue.commit_product_id


def test_prepaid_balance_threshold_recharges_even_when_unbillable(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "thr")
    contract_id = contract(
        world,
        catalogue,
        customer,
        commits=[
            {
                "type": "PREPAID",
                "product_id": catalogue.commit_product_id,
                "priority": 1,
                "name": "Starting balance",
                "access_schedule": {
                    "schedule_items": [{"amount": 2000, "starting_at": at(1), "ending_before": FOREVER}]
                },
            }
        ],
    )
    set_billable_status(world.client, customer, "unbillable", at(1))
    world.set_time(at(10))
    ingest(world.client, [llm("thr", "r1", at(9), "gpt-4", 800)])  # 1600 -> balance 400
    with pytest.raises(metronome.BadRequestError) as error:  # threshold must be at least $5
        world.client.v2.contracts.edit(
            customer_id=customer,
            contract_id=contract_id,
            add_prepaid_balance_threshold_configuration={
                "commit": {"product_id": catalogue.commit_product_id},
                "is_enabled": True,
                "payment_gate_config": {"payment_gate_type": "NONE"},
                "threshold_amount": 100,
                "recharge_to_amount": 5000,
            },
        )
    assert error.value.body["code"] == "invalid_threshold"
    world.client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        add_prepaid_balance_threshold_configuration={
            "commit": {"product_id": catalogue.commit_product_id, "name": "Auto recharge"},
            "is_enabled": True,
            "payment_gate_config": {"payment_gate_type": "NONE"},
            "threshold_amount": 1000,
            "recharge_to_amount": 5000,
        },
    )

    def recharges() -> list[float]:
        got = world.client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data
        return [c.access_schedule.schedule_items[0].amount for c in got.commits if c.name == "Auto recharge"]

    # evaluated at once: 400 < 1000, so top up by 5000 - 400 = 4600
    assert recharges() == [4600]
    world.set_time(at(12))
    # 2100 x 2c = 4200: the old 400 goes first ($0 cost basis), then 3800 of the recharge -> balance 800
    ingest(world.client, [llm("thr", "r2", at(11), "gpt-4", 2100)])
    assert recharges() == [4600, 4200]
    total = sum(
        b.balance or 0
        for b in world.client.v1.contracts.list_balances(
            customer_id=customer, include_contract_balances=True, include_balance=True
        )
    )
    assert total == 5000
    scheduled = world.client.v1.customers.invoices.list(customer_id=customer, type="SCHEDULED").data
    assert sorted((i.total, i.billable_status) for i in scheduled) == [(4200, "unbillable"), (4600, "unbillable")]


def stripe_deliveries(world: World, customer_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(world.emulator.url + STRIPE_DELIVERIES_PATH, params={"customer_id": customer_id})
    return list(reply.json())


def test_past_effective_at_and_only_billable_invoices_reach_stripe(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "deliver", stripe_customer="cus_deliver")
    contract(world, catalogue, customer)
    world.set_time(at(20))
    ingest(world.client, [llm("deliver", "d1", at(10), "gpt-4", 100)])  # 200
    # effective_at in the past: the open January statement takes the new status at once
    set_billable_status(world.client, customer, "unbillable", at(1))
    (jan,) = usage_invoices(world, customer)
    assert (jan.status, jan.billable_status) == ("DRAFT", "unbillable")
    world.set_time(at(2, 2, hour=1))
    # cutover at Feb 1, decided a day later: in the past, but not before the last finalized invoice (Jan)
    set_billable_status(world.client, customer, "billable", at(1, 2))
    world.set_time(at(20, 2))
    ingest(world.client, [llm("deliver", "d2", at(10, 2), "gpt-4", 300)])  # 600
    assert stripe_deliveries(world, customer) == []  # nothing finalized is billable yet
    world.set_time(at(2, 3, hour=1))
    jan, feb, _march = usage_invoices(world, customer)
    assert (jan.status, jan.billable_status, jan.total, jan.external_invoice) == ("FINALIZED", "unbillable", 200, None)
    assert (feb.status, feb.billable_status, feb.total) == ("FINALIZED", "billable", 600)
    got = world.client.v1.customers.invoices.retrieve(customer_id=customer, invoice_id=feb.id).data
    assert got.external_invoice is not None and got.external_invoice.billing_provider_type == "stripe"
    # the unbillable January invoice was never sent; February was, once
    assert [(d["invoice_id"], d["stripe_customer_id"], d["total"]) for d in stripe_deliveries(world, customer)] == [
        (feb.id, "cus_deliver", 600)
    ]


def test_contract_start_statement_periods(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "anchor")
    world.client.v1.contracts.create(
        customer_id=customer,
        starting_at=at(15),
        rate_card_id=catalogue.rate_card_id,
        usage_statement_schedule={"frequency": "MONTHLY", "day": "CONTRACT_START"},
    )
    world.set_time(at(14, 2, hour=12))
    ingest(world.client, [llm("anchor", "a1", at(14, 2), "gpt-4", 10), llm("anchor", "a2", at(15, 2), "gpt-4", 20)])
    world.set_time(at(20, 2))
    invoices = usage_invoices(world, customer)
    assert [(i.start_timestamp, i.end_timestamp, i.total) for i in invoices] == [
        (at(15), at(15, 2), 20),  # 10 x 2c, finalized on Feb 16
        (at(15, 2), at(15, 3), 40),  # 20 x 2c, open
    ]
    assert [i.status for i in invoices] == ["FINALIZED", "DRAFT"]


def test_quarterly_periods_on_a_custom_anchor(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "quarter")
    world.client.v1.contracts.create(
        customer_id=customer,
        starting_at=at(1),
        rate_card_id=catalogue.rate_card_id,
        usage_statement_schedule={"frequency": "QUARTERLY", "day": "CUSTOM_DATE", "billing_anchor_date": at(10, 2)},
    )
    world.set_time(at(9, 2, hour=12))
    ingest(world.client, [llm("quarter", "q1", at(9, 2), "gpt-4", 10), llm("quarter", "q2", at(10, 2), "gpt-4", 20)])
    world.set_time(at(20, 2))
    # a partial first period up to the anchor, then quarters from it
    assert [(i.start_timestamp, i.end_timestamp, i.total) for i in usage_invoices(world, customer)] == [
        (at(1), at(10, 2), 20),
        (at(10, 2), at(10, 5), 40),
    ]


def test_a_later_rate_prices_the_periods_from_its_starting_at(world: World, catalogue: Catalogue) -> None:
    world.client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=catalogue.rate_card_id,
        rates=[
            {
                "product_id": catalogue.tokens_product_id,
                "pricing_group_values": {"model": model},
                "starting_at": at(1, 2),
                "entitled": True,
                "rate_type": "FLAT",
                "price": price,
            }
            for model, price in (("gpt-4", 3), ("small", 1))
        ],
    )
    (rate,) = world.client.v1.contracts.rate_cards.rates.list(
        rate_card_id=catalogue.rate_card_id,
        at=at(1, 2),
        selectors=[{"product_id": catalogue.tokens_product_id, "pricing_group_values": {"model": "gpt-4"}}],
    ).data
    assert (rate.rate.price, rate.starting_at) == (3, at(1, 2))
    customer = new_customer(world.client, "reprice")
    contract(world, catalogue, customer)
    world.set_time(at(20))
    ingest(world.client, [llm("reprice", "r1", at(10), "gpt-4", 100)])
    world.set_time(at(20, 2))
    ingest(world.client, [llm("reprice", "r2", at(10, 2), "gpt-4", 100)])
    # January at the old 2c, February at the new 3c
    assert [i.total for i in usage_invoices(world, customer)] == [200, 300]


def test_preview_events_shows_the_draft_with_them_and_stores_nothing(world: World, catalogue: Catalogue) -> None:
    client = world.client
    customer = new_customer(client, "preview")
    contract(world, catalogue, customer)
    world.set_time(at(20))
    ingest(client, [llm("preview", "pv-1", at(10), "gpt-4", 100)])  # 200

    def preview(events: list[dict[str, Any]], mode: Any) -> Any:
        (draft,) = client.v1.customers.preview_events(customer_id=customer, events=events, mode=mode).data  # type: ignore[arg-type]
        return draft

    def event(tid: str, model: str, tokens: int) -> dict[str, Any]:
        return {k: v for k, v in llm("preview", tid, at(15), model, tokens).items() if k != "customer_id"}

    merged = preview([event("pv-2", "gpt-4", 50), event("pv-3", "GPT-4", 500)], "merge")
    # 150 x 2c = 300; "GPT-4" has no rate, so no line for it
    assert (merged.status, merged.total) == ("DRAFT", 300)
    assert [li.pricing_group_values for li in merged.line_items] == [{"model": "gpt-4"}]
    assert preview([event("pv-1", "gpt-4", 1000)], "merge").total == 200  # already ingested: deduplicated
    assert preview([event("pv-4", "small", 301)], "replace").total == 151  # as if the only events: 301 x 0.5c
    with pytest.raises(metronome.BadRequestError):
        preview([event("twice", "gpt-4", 1), event("twice", "gpt-4", 1)], "merge")
    (stored,) = usage_invoices(world, customer)
    assert stored.total == 200
    assert client.v1.usage.search(transaction_ids=["pv-2", "pv-4"]) == []


def billable_schedule(world: World, customer_id: str) -> list[tuple[str, str]]:
    reply = httpx.get(world.emulator.url + BILLABLE_STATUS_PATH, params={"customer_id": customer_id})
    return [(change["value"], change["effective_at"]) for change in reply.json()]


def test_a_scheduled_billable_status_change_keeps_a_later_one(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "two-changes")
    contract(world, catalogue, customer)
    set_billable_status(world.client, customer, "unbillable", at(1))
    set_billable_status(world.client, customer, "billable", at(1, 3))  # cutover planned for March
    set_billable_status(world.client, customer, "unbillable", at(1, 2))  # an earlier change, made later
    assert billable_schedule(world, customer) == [
        ("unbillable", "2030-01-01T00:00:00.000Z"),
        ("unbillable", "2030-02-01T00:00:00.000Z"),
        ("billable", "2030-03-01T00:00:00.000Z"),
    ]
    set_billable_status(world.client, customer, "billable", at(1, 2))  # same instant: replaces that one only
    assert [value for value, _ in billable_schedule(world, customer)] == ["unbillable", "billable", "billable"]
    status = world.client.v1.customers.retrieve(customer_id=customer).data.current_billable_status
    assert status is not None and (status.value, status.effective_at) == ("unbillable", at(1))  # in effect now
    world.set_time(at(2, 3))
    jan, feb, march = usage_invoices(world, customer)
    assert [i.billable_status for i in (jan, feb, march)] == ["unbillable", "billable", "billable"]
