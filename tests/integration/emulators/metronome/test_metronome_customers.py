"""Customers, aliases, billing provider configurations and the catalogue, through the SDK (no clock moves)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import metronome
import pytest
from metronome_world import World, make_catalogue, new_customer


def test_create_list_by_alias_and_retrieve(shared_world: World) -> None:
    client = shared_world.client
    customer_id = new_customer(client, "cust-a1", stripe_customer="cus_a1")
    (found,) = client.v1.customers.list(ingest_alias="cust-a1").data
    assert (found.id, found.ingest_aliases, found.name) == (customer_id, ["cust-a1"], "Customer cust-a1")
    got = client.v1.customers.retrieve(customer_id=customer_id).data
    assert got.current_billable_status is not None
    assert (got.current_billable_status.value, got.current_billable_status.effective_at) == ("billable", None)
    assert client.v1.customers.list(ingest_alias="no-such-alias").data == []


def test_alias_in_use_is_a_conflict(shared_world: World) -> None:
    client = shared_world.client
    first = new_customer(client, "cust-dup")
    with pytest.raises(metronome.ConflictError):
        new_customer(client, "cust-dup")
    other = new_customer(client, "cust-other")
    with pytest.raises(metronome.ConflictError):
        client.v1.customers.set_ingest_aliases(customer_id=other, ingest_aliases=["cust-dup"])
    # setIngestAliases replaces the whole set, and frees the old alias
    client.v1.customers.set_ingest_aliases(customer_id=first, ingest_aliases=["cust-dup-new"])
    assert [c.id for c in client.v1.customers.list(ingest_alias="cust-dup-new")] == [first]
    assert client.v1.customers.list(ingest_alias="cust-dup").data == []
    client.v1.customers.set_ingest_aliases(customer_id=other, ingest_aliases=["cust-dup"])
    assert [c.id for c in client.v1.customers.list(ingest_alias="cust-dup")] == [other]


def test_billing_provider_configuration_ids_feed_a_contract(shared_world: World) -> None:
    client = shared_world.client
    customer_id = new_customer(client, "cust-bpc", stripe_customer=None)
    reply = client.v1.customers.set_billing_configurations(
        data=[
            {
                "customer_id": customer_id,
                "billing_provider": "stripe",
                "delivery_method": "direct_to_billing_provider",
                "configuration": {"stripe_customer_id": "cus_bpc", "stripe_collection_method": "send_invoice"},
            }
        ]
    )
    (config,) = reply.data
    assert config.id and config.customer_id == customer_id
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        starting_at=datetime(2030, 1, 1, tzinfo=UTC),
        billing_provider_configuration={"billing_provider_configuration_id": config.id},
    ).data.id
    got = client.v2.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    assert got.customer_billing_provider_configuration is not None
    assert got.customer_billing_provider_configuration.id == config.id


def test_unknown_customer_is_404_and_missing_token_is_401(shared_world: World) -> None:
    with pytest.raises(metronome.NotFoundError) as error:
        shared_world.client.v1.customers.retrieve(customer_id="00000000-0000-4000-8000-000000000000")
    assert "customer" in error.value.body["message"]
    reply = httpx.get(shared_world.emulator.url + "/v1/customers")
    assert reply.status_code == 401 and "message" in reply.json()


def test_catalogue_reads_back(shared_world: World) -> None:
    client = shared_world.client
    cat = make_catalogue(client)
    metric = client.v1.billable_metrics.retrieve(billable_metric_id=cat.metric_id).data
    assert (metric.aggregation_type, metric.aggregation_key, metric.group_keys) == ("SUM", "tokens", [["model"]])
    card = client.v1.contracts.rate_cards.retrieve(id=cat.rate_card_id).data
    assert (card.name, card.fiat_credit_type.name if card.fiat_credit_type else None) == ("Standard", "USD (cents)")
    product = client.v1.contracts.products.retrieve(id=cat.tokens_product_id).data
    assert (product.type, product.current.pricing_group_key) == ("USAGE", ["model"])
    assert product.current.billable_metric_id == cat.metric_id
    rates = client.v1.contracts.rate_cards.rates.list(
        rate_card_id=cat.rate_card_id,
        at=datetime(2030, 1, 1, tzinfo=UTC),
        selectors=[{"product_id": cat.tokens_product_id}],
    ).data
    assert sorted((r.pricing_group_values or {}).get("model", "") for r in rates) == ["gpt-4", "small"]
    (tiered,) = client.v1.contracts.rate_cards.rates.list(
        rate_card_id=cat.rate_card_id,
        at=datetime(2030, 1, 1, tzinfo=UTC),
        selectors=[{"product_id": cat.calls_product_id}],
    ).data
    assert tiered.rate.rate_type == "TIERED" and [t.price for t in tiered.rate.tiers or []] == [20, 15, 10]
    # rates are priced as of `at`: nothing existed before the rates' starting_at
    assert (
        client.v1.contracts.rate_cards.rates.list(
            rate_card_id=cat.rate_card_id, at=datetime(2019, 1, 1, tzinfo=UTC)
        ).data
        == []
    )


def test_usage_product_needs_its_metric_group_key(shared_world: World) -> None:
    client = shared_world.client
    cat = make_catalogue(client)
    with pytest.raises(metronome.BadRequestError) as error:
        client.v1.contracts.products.create(
            name="bad", type="USAGE", billable_metric_id=cat.calls_metric_id, pricing_group_key=["model"]
        )
    assert "pricing_group_key" in error.value.body["message"]


def test_customer_list_pages_with_next_page(shared_world: World) -> None:
    client = shared_world.client
    for i in range(3):
        new_customer(client, f"pager-{i}")
    first = client.v1.customers.list(limit=2)
    assert len(first.data) == 2 and first.next_page
    everyone = [c.id for c in client.v1.customers.list(limit=2)]  # the SDK follows next_page
    assert len(everyone) == len(set(everyone)) >= 3


def test_concurrent_creates_with_one_alias_make_one_customer(shared_world: World) -> None:
    def create(n: int) -> str:
        try:
            return shared_world.client.v1.customers.create(name=f"racer {n}", ingest_aliases=["race"]).data.id
        except metronome.ConflictError:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(create, range(8)))
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == 7
    assert [c.id for c in shared_world.client.v1.customers.list(ingest_alias="race")] == winners


def test_a_fixed_product_cannot_be_priced_on_a_rate_card(shared_world: World) -> None:
    client = shared_world.client
    cat = make_catalogue(client)
    with pytest.raises(metronome.BadRequestError) as error:
        client.v1.contracts.rate_cards.rates.add(
            rate_card_id=cat.rate_card_id,
            product_id=cat.commit_product_id,
            starting_at=datetime(2030, 1, 1, tzinfo=UTC),
            entitled=True,
            rate_type="FLAT",
            price=9900,
        )
    assert "FIXED" in error.value.body["message"]


def _stripe_config(customer_id: str, stripe_customer: str, method: str = "charge_automatically") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "billing_provider": "stripe",
        "delivery_method": "direct_to_billing_provider",
        "configuration": {"stripe_customer_id": stripe_customer, "stripe_collection_method": method},
    }


def test_a_rerun_finds_the_billing_provider_configuration_it_made(shared_world: World) -> None:
    client = shared_world.client
    customer_id = new_customer(client, "cust-get-bpc", stripe_customer=None)
    assert client.v1.customers.retrieve_billing_configurations(customer_id=customer_id).data == []
    (made,) = client.v1.customers.set_billing_configurations(data=[_stripe_config(customer_id, "cus_get")]).data
    (found,) = client.v1.customers.retrieve_billing_configurations(customer_id=customer_id).data
    assert (found.id, found.customer_id, found.billing_provider, found.delivery_method) == (
        made.id,
        customer_id,
        "stripe",
        "direct_to_billing_provider",
    )
    assert found.configuration == {"stripe_customer_id": "cus_get", "stripe_collection_method": "charge_automatically"}
    assert found.delivery_method_id == made.delivery_method_id and found.archived_at is None
    # made at customer creation: found the same way
    created = new_customer(client, "cust-get-bpc-2", stripe_customer="cus_get_2")
    (inline,) = client.v1.customers.retrieve_billing_configurations(customer_id=created).data
    assert inline.configuration["stripe_customer_id"] == "cus_get_2"


def test_a_second_identical_configuration_is_refused_until_the_first_is_archived(shared_world: World) -> None:
    client = shared_world.client
    customer_id = new_customer(client, "cust-dup-bpc", stripe_customer="cus_dup_bpc")
    (first,) = client.v1.customers.retrieve_billing_configurations(customer_id=customer_id).data
    with pytest.raises(metronome.BadRequestError) as error:
        client.v1.customers.set_billing_configurations(data=[_stripe_config(customer_id, "cus_dup_bpc")])
    assert first.id in error.value.body["message"]
    # Metronome allows two Stripe configurations that differ in collection method
    (other,) = client.v1.customers.set_billing_configurations(
        data=[_stripe_config(customer_id, "cus_dup_bpc", "send_invoice")]
    ).data
    assert len(client.v1.customers.retrieve_billing_configurations(customer_id=customer_id).data) == 2
    client.v1.customers.archive_billing_configurations(
        customer_id=customer_id, customer_billing_provider_configuration_ids=[first.id]
    )
    assert [c.id for c in client.v1.customers.retrieve_billing_configurations(customer_id=customer_id).data] == [
        other.id
    ]
    archived = client.v1.customers.retrieve_billing_configurations(customer_id=customer_id, include_archived=True)
    assert {c.id: c.archived_at is not None for c in archived.data} == {first.id: True, other.id: False}
    with pytest.raises(metronome.BadRequestError):
        client.v1.contracts.create(
            customer_id=customer_id,
            starting_at=datetime(2030, 1, 1, tzinfo=UTC),
            billing_provider_configuration={"billing_provider_configuration_id": first.id},
        )
    (again,) = client.v1.customers.set_billing_configurations(data=[_stripe_config(customer_id, "cus_dup_bpc")]).data
    assert again.id not in (first.id, other.id)
