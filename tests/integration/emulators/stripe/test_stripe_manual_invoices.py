"""One-off invoices through the SDK: invoice items, a draft, finalize and pay, with a declining test card."""

from __future__ import annotations

import pytest
import stripe
from stripe_world import World, at, customer_on_clock


def test_items_on_a_draft_then_finalize_charges_the_default_payment_method(world: World) -> None:
    c = world.client.v1
    _clock, customer = customer_on_clock(world.client, at(3))
    pending = c.invoice_items.create(params={"customer": customer, "amount": 250, "currency": "usd"})
    invoice = c.invoices.create(
        params={"customer": customer, "collection_method": "charge_automatically", "metadata": {"source": "test"}}
    )
    assert (invoice.status, invoice.billing_reason, invoice.parent, invoice.total) == ("draft", "manual", None, 0)
    c.invoice_items.create(
        params={"customer": customer, "amount": 1200, "description": "Usage Jan", "invoice": invoice.id}
    )
    c.invoice_items.create(params={"customer": customer, "amount": 300, "invoice": invoice.id})
    finalized = c.invoices.finalize_invoice(invoice.id)
    assert (finalized.status, finalized.total, finalized.amount_paid, finalized.created) == ("paid", 1500, 1500, at(3))
    lines = c.invoices.line_items.list(invoice.id).data
    assert [(line.amount, line.description) for line in lines] == [(1200, "Usage Jan"), (300, None)]
    assert lines[0].parent is not None and lines[0].parent.type == "invoice_item_details"
    # a pending item waits for an invoice that includes pending items
    assert c.invoice_items.retrieve(pending.id).invoice is None
    later = c.invoices.create(params={"customer": customer, "pending_invoice_items_behavior": "include"})
    assert later.total == 250 and c.invoice_items.retrieve(pending.id).invoice == later.id
    assert {i.id for i in c.invoices.list(params={"customer": customer}).data} == {invoice.id, later.id}


def test_a_declining_card_leaves_the_invoice_open_and_pay_raises_a_card_error(world: World) -> None:
    c = world.client.v1
    clock = c.test_helpers.test_clocks.create(params={"frozen_time": at(3)}).id
    customer = c.customers.create(
        params={
            "test_clock": clock,
            "payment_method": "pm_card_chargeDeclined",
            "invoice_settings": {"default_payment_method": "pm_card_chargeDeclined"},
        }
    ).id
    invoice = c.invoices.create(params={"customer": customer})
    c.invoice_items.create(params={"customer": customer, "amount": 5000, "invoice": invoice.id})
    opened = c.invoices.finalize_invoice(invoice.id)
    assert (opened.status, opened.amount_remaining, opened.attempt_count) == ("open", 5000, 1)
    with pytest.raises(stripe.CardError) as error:
        c.invoices.pay(invoice.id)
    assert error.value.code == "card_declined"
    assert c.invoices.retrieve(invoice.id).attempt_count == 2
    # send_invoice: finalized and left for the customer to pay, due in days_until_due
    sent = c.invoices.create(params={"customer": customer, "collection_method": "send_invoice", "days_until_due": 7})
    c.invoice_items.create(params={"customer": customer, "amount": 100, "invoice": sent.id})
    finalized = c.invoices.finalize_invoice(sent.id)
    assert (finalized.status, finalized.due_date) == ("open", at(10))
    with pytest.raises(stripe.InvalidRequestError):
        c.invoice_items.create(params={"customer": customer, "amount": 1, "invoice": sent.id})  # not a draft
