"""Metronome and Stripe emulators on one world clock: billable invoices arrive in Stripe as invoices of the
configured Stripe customer, and a STRIPE payment gate charges auto-recharges there (both through the SDKs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from billmig_local.clock import WorldClock
from billmig_local.emulators.metronome import start as start_metronome
from billmig_local.emulators.metronome.app import STRIPE_DELIVERIES_PATH
from billmig_local.emulators.server import RunningEmulator
from billmig_local.emulators.stripe import start as start_stripe
from metronome import Metronome
from metronome_world import JAN_1, Catalogue, at, ingest, llm, make_catalogue, set_billable_status

FOREVER = at(1, 1).replace(year=2031)


@dataclass
class Pair:
    clock: WorldClock
    metronome: Metronome
    stripe: stripe.StripeClient
    metronome_emulator: RunningEmulator
    catalogue: Catalogue


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    clock = WorldClock(tmp_path / "clock.json", start_at=JAN_1.timestamp())
    stripe_emulator = start_stripe(clock=clock, state_dir=tmp_path / "s")
    metronome_emulator = start_metronome(clock=clock, state_dir=tmp_path / "m")
    metronome_emulator.extra["connect_stripe"](stripe_emulator.url)  # what `billmig local up` does
    url = stripe_emulator.url
    stripe_client = stripe.StripeClient("sk_test_x", base_addresses={"api": url, "meter_events": url})
    client = Metronome(bearer_token="t", base_url=metronome_emulator.url, max_retries=0)
    try:
        yield Pair(clock, client, stripe_client, metronome_emulator, make_catalogue(client))
    finally:
        client.close()
        for emulator in (metronome_emulator, stripe_emulator):
            emulator.server.stop()
            emulator.extra["store"].close()


def stripe_customer(pair: Pair, card: str = "pm_card_visa") -> str:
    return pair.stripe.v1.customers.create(
        params={"payment_method": card, "invoice_settings": {"default_payment_method": card}}
    ).id


def metronome_customer(pair: Pair, alias: str, stripe_id: str, **contract: Any) -> tuple[str, str]:
    m = pair.metronome
    customer = m.v1.customers.create(
        name=alias,
        ingest_aliases=[alias],
        customer_billing_provider_configurations=[
            {
                "billing_provider": "stripe",
                "delivery_method": "direct_to_billing_provider",
                "configuration": {"stripe_customer_id": stripe_id, "stripe_collection_method": "charge_automatically"},
            }
        ],
    ).data.id
    contract_id = m.v1.contracts.create(
        customer_id=customer,
        starting_at=at(1),
        rate_card_id=pair.catalogue.rate_card_id,
        usage_statement_schedule={"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"},
        billing_provider_configuration={"billing_provider": "stripe", "delivery_method": "direct_to_billing_provider"},
        **contract,
    ).data.id
    return customer, contract_id


def test_a_billable_invoice_arrives_in_stripe_beside_the_stripe_subscription(pair: Pair) -> None:
    s = pair.stripe.v1
    cus = stripe_customer(pair)
    product = s.products.create(params={"name": "Platform"}).id
    fee = s.prices.create(
        params={"product": product, "currency": "usd", "unit_amount": 9900, "recurring": {"interval": "month"}}
    ).id
    s.subscriptions.create(
        params={"customer": cus, "items": [{"price": fee}], "billing_cycle_anchor": int(at(1, 2).timestamp())}
    )
    customer, _contract = metronome_customer(pair, "both", cus)
    pair.clock.set(at(10).timestamp())
    ingest(pair.metronome, [llm("both", "b1", at(9), "gpt-4", 100)])  # 200 cents
    pair.clock.set(at(2, 2, hour=1).timestamp())  # January finalized after its grace period, delivered

    (jan,) = [i for i in pair.metronome.v1.customers.invoices.list(customer_id=customer) if i.type == "USAGE"][:1]
    assert (jan.status, jan.total) == ("FINALIZED", 200)
    manual = [i for i in s.invoices.list(params={"customer": cus}).data if i.billing_reason == "manual"]
    (delivered,) = manual
    assert (delivered.total, delivered.status, delivered.metadata["metronome_id"]) == (200, "paid", jan.id)
    assert jan.external_invoice is not None
    assert (jan.external_invoice.invoice_id, jan.external_invoice.external_status) == (delivered.id, "PAID")
    # the double billing of a parallel run is visible from Stripe's side: Stripe's own cycle invoice is there too
    reasons = sorted(str(i.billing_reason) for i in s.invoices.list(params={"customer": cus}).data)
    assert reasons == ["manual", "subscription_create", "subscription_cycle"]
    (record,) = httpx.get(
        str(pair.metronome_emulator.url) + STRIPE_DELIVERIES_PATH, params={"customer_id": customer}
    ).json()
    assert (record["stripe_invoice_id"], record["status"]) == (delivered.id, "paid")
    # a later catch-up sends nothing twice
    pair.clock.advance(3600)
    assert len([i for i in s.invoices.list(params={"customer": cus}).data if i.billing_reason == "manual"]) == 1


def test_an_unknown_stripe_customer_fails_the_delivery_permanently(pair: Pair) -> None:
    customer, _contract = metronome_customer(pair, "ghost", "cus_does_not_exist")
    pair.clock.set(at(10).timestamp())
    ingest(pair.metronome, [llm("ghost", "g1", at(9), "gpt-4", 100)])
    pair.clock.set(at(2, 2, hour=1).timestamp())
    (record,) = httpx.get(
        str(pair.metronome_emulator.url) + STRIPE_DELIVERIES_PATH, params={"customer_id": customer}
    ).json()
    assert (record["status"], record["stripe_invoice_id"]) == ("failed", None)
    assert "cus_does_not_exist" in record["error"]


def _threshold(pair: Pair) -> dict[str, Any]:
    return {
        "commit": {"product_id": pair.catalogue.commit_product_id, "name": "Auto recharge"},
        "is_enabled": True,
        "payment_gate_config": {"payment_gate_type": "STRIPE", "stripe_config": {"payment_type": "INVOICE"}},
        "threshold_amount": 1000,
        "recharge_to_amount": 5000,
    }


def _starting_balance(pair: Pair) -> list[dict[str, Any]]:
    return [
        {
            "type": "PREPAID",
            "product_id": pair.catalogue.commit_product_id,
            "priority": 1,
            "name": "Starting balance",
            "access_schedule": {"schedule_items": [{"amount": 2000, "starting_at": at(1), "ending_before": FOREVER}]},
        }
    ]


@pytest.mark.parametrize("card, paid", [("pm_card_visa", True), ("pm_card_chargeDeclined", False)])
def test_a_stripe_gated_recharge_is_charged_in_stripe_even_when_unbillable(pair: Pair, card: str, paid: bool) -> None:
    cus = stripe_customer(pair, card)
    customer, contract_id = metronome_customer(
        pair, "gate", cus, commits=_starting_balance(pair), prepaid_balance_threshold_configuration=_threshold(pair)
    )
    set_billable_status(pair.metronome, customer, "unbillable", at(1))
    pair.clock.set(at(10).timestamp())
    ingest(pair.metronome, [llm("gate", "r1", at(9), "gpt-4", 800)])  # 1600 -> balance 400, below 1000
    got = pair.metronome.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data
    recharges = [c for c in got.commits if c.name == "Auto recharge"]
    charged = [i for i in pair.stripe.v1.invoices.list(params={"customer": cus}).data if i.billing_reason == "manual"]
    (invoice,) = charged  # charged through Stripe although the customer is unbillable
    assert invoice.total == 4600 and invoice.metadata["metronome_contract_id"] == contract_id
    config = got.prepaid_balance_threshold_configuration
    assert config is not None
    if paid:
        assert invoice.status == "paid" and config.is_enabled is True
        assert [c.access_schedule.schedule_items[0].amount for c in recharges] == [4600]
    else:  # a failed gated payment adds nothing and turns the configuration off
        assert invoice.status == "open" and config.is_enabled is False and recharges == []


def test_re_enabling_a_failed_gate_through_v2_edit_charges_again(pair: Pair) -> None:
    cus = stripe_customer(pair, "pm_card_chargeDeclined")
    customer, contract_id = metronome_customer(pair, "re-enable", cus, commits=_starting_balance(pair))
    pair.clock.set(at(10).timestamp())
    ingest(pair.metronome, [llm("re-enable", "e1", at(9), "gpt-4", 800)])  # balance 400
    m = pair.metronome.v2.contracts
    m.edit(customer_id=customer, contract_id=contract_id, add_prepaid_balance_threshold_configuration=_threshold(pair))
    got = m.retrieve(customer_id=customer, contract_id=contract_id).data
    assert got.prepaid_balance_threshold_configuration is not None
    assert got.prepaid_balance_threshold_configuration.is_enabled is False  # declined at once
    s = pair.stripe.v1
    card = s.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}}).id
    s.payment_methods.attach(card, params={"customer": cus})
    s.customers.update(cus, params={"invoice_settings": {"default_payment_method": card}})
    m.edit(
        customer_id=customer,
        contract_id=contract_id,
        update_prepaid_balance_threshold_configuration={"is_enabled": True},
    )
    got = m.retrieve(customer_id=customer, contract_id=contract_id).data
    assert [c.access_schedule.schedule_items[0].amount for c in got.commits if c.name == "Auto recharge"] == [4600]
    charged = pair.stripe.v1.invoices.list(params={"customer": cus}).data
    # a new configuration revision is a new Stripe invoice, not a replay of the declined one
    assert sorted(str(i.status) for i in charged if i.billing_reason == "manual") == ["open", "paid"]
