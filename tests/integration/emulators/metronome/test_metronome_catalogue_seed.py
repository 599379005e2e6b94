"""`billmig local seed metronome`: the shared catalogue through the SDK, idempotent, and pricing like Stripe's seed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import typer
from billmig_local.catalogue import STANDARD, UNRATED_REGION
from billmig_local.emulators.metronome.catalogue_seed import CatalogueConflict, metronome_tiers, seed_catalogue
from billmig_local.emulators.metronome.seed import CATALOGUE_FILE, seed
from metronome_world import World, at, ingest, new_customer
from typer.testing import CliRunner


def usage_event(key: str, alias: str, tid: str, when: datetime, quantity: float, value: str | None = None) -> Any:
    """One logical usage event in the shape the catalogue documents for Metronome."""
    offering = STANDARD.offering(key)
    properties: dict[str, Any] = {offering.value_property: quantity}
    if offering.pricing_group_key and value is not None:
        properties[offering.pricing_group_key] = value
    return {
        "customer_id": alias,
        "event_type": offering.metric,
        "timestamp": when.isoformat(),
        "transaction_id": tid,
        "properties": properties,
    }


def test_stripe_graduated_tiers_become_metronome_tier_sizes() -> None:
    (rate,) = STANDARD.offering("api_calls").rates
    assert metronome_tiers(rate.tiers) == [{"size": 1000, "price": 0}, {"size": 9000, "price": 2}, {"price": 1}]


def test_seed_command_twice_gives_the_same_ids_and_no_duplicates(world: World) -> None:
    state_dir = world.state_dir / "local"
    state_dir.mkdir()
    (state_dir / "endpoints.json").write_text(json.dumps({"metronome": world.emulator.url}))
    app = typer.Typer()
    app.command()(seed)
    runs = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["--state-dir", str(state_dir)])
        assert result.exit_code == 0, result.output
        runs.append((json.loads((state_dir / CATALOGUE_FILE).read_text()), result.output))
    (first, first_output), (second, second_output) = runs
    assert first == second
    assert "0 created" in second_output and "0 created" not in first_output
    client = world.client
    assert sorted(m.name for m in client.v1.billable_metrics.list()) == ["api_call", "compute_minutes", "storage_gb"]
    assert len(client.v1.contracts.products.list().data) == 3 + 2  # three USAGE, two FIXED
    assert [c.id for c in client.v1.contracts.rate_cards.list()] == [first["rate_card_id"]]
    rates = client.v1.contracts.rate_cards.rates.list(rate_card_id=first["rate_card_id"], at=at(1)).data
    assert sorted((r.product_name, str(r.pricing_group_values)) for r in rates) == [
        ("API calls", "None"),
        ("Compute minutes", "None"),
        ("Storage (GB-months)", "{'region': 'eu-west'}"),
        ("Storage (GB-months)", "{'region': 'us-east'}"),
    ]  # none for the unrated region, on purpose
    storage = client.v1.contracts.products.retrieve(id=first["usage_product_ids"]["storage_gb"]).data
    assert storage.current.pricing_group_key == ["region"]
    metric = client.v1.billable_metrics.retrieve(billable_metric_id=first["billable_metric_ids"]["storage_gb"]).data
    assert (metric.aggregation_type, metric.aggregation_key, metric.group_keys) == ("LATEST", "gb", [["region"]])
    fixed = client.v1.contracts.products.retrieve(id=first["prepaid_commit_product_id"]).data
    assert (fixed.type, fixed.current.name) == ("FIXED", STANDARD.credit_products.prepaid_commit)


def test_billmig_local_seed_metronome_runs_this_command() -> None:
    from billmig_local.emulators import available_seeders

    assert available_seeders()["metronome"] is seed


def test_seed_command_without_a_running_emulator_says_so(world: World) -> None:
    app = typer.Typer()
    app.command()(seed)
    result = CliRunner().invoke(app, ["--state-dir", str(world.state_dir / "nowhere")])
    assert result.exit_code == 1 and "endpoints.json not found" in result.output


def test_an_existing_product_of_the_same_name_but_another_meaning_stops_the_seed(shared_world: World) -> None:
    client = shared_world.client
    other = client.v1.billable_metrics.create(name="something else", aggregation_type="COUNT").data.id
    client.v1.contracts.products.create(name="Compute minutes", type="USAGE", billable_metric_id=other)
    with pytest.raises(CatalogueConflict) as error:
        seed_catalogue(client)
    assert "Compute minutes" in str(error.value)


def test_one_month_of_usage_prices_by_the_seeded_rate_card(world: World) -> None:
    client = world.client
    ids = seed_catalogue(client)
    customer = new_customer(client, "parity")
    client.v1.contracts.create(
        customer_id=customer,
        starting_at=at(1),
        rate_card_id=ids.rate_card_id,
        usage_statement_schedule={"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"},
    )
    world.set_time(at(20))
    events = [usage_event("api_calls", "parity", f"call-{n}", at(2 + n % 17), 1) for n in range(10_500)]
    events += [
        usage_event("compute_minutes", "parity", "cm-1", at(3), 120),
        usage_event("compute_minutes", "parity", "cm-2", at(4), 45),
        usage_event("compute_minutes", "parity", "cm-3", at(5), 35),
        usage_event("storage_gb", "parity", "gb-1", at(3), 30, "us-east"),
        usage_event("storage_gb", "parity", "gb-2", at(9), 40, "us-east"),  # latest value counts
        usage_event("storage_gb", "parity", "gb-3", at(4), 12, "eu-west"),
        usage_event("storage_gb", "parity", "gb-4", at(4), 7, UNRATED_REGION),
    ]
    ingest(client, events)
    world.set_time(at(2, 2, hour=1))  # January is over and past its 24 h grace period
    january = next(i for i in client.v1.customers.invoices.list(customer_id=customer, type="USAGE"))
    assert january.status == "FINALIZED"
    lines = {(li.name, str(li.pricing_group_values)): (li.quantity, li.total) for li in january.line_items}
    assert lines == {
        # 10,500 calls: 1,000 x 0c + 9,000 x 2c + 500 x 1c = 18,500
        ("API calls", "None"): (10_500, 18_500),
        # 120 + 45 + 35 = 200 minutes x 3c = 600
        ("Compute minutes", "None"): (200, 600),
        # latest us-east 40 GB x 20c = 800; eu-west 12 GB x 25c = 300; ap-south: no rate, no line
        ("Storage (GB-months)", "{'region': 'us-east'}"): (40, 800),
        ("Storage (GB-months)", "{'region': 'eu-west'}"): (12, 300),
    }
    assert january.total == 18_500 + 600 + 800 + 300
    # the unrated region is usage all the same
    storage = {
        g.group_value: g.value
        for g in client.v1.usage.list_with_groups(
            customer_id=customer,
            billable_metric_id=ids.billable_metric_ids["storage_gb"],
            window_size="NONE",
            group_key=["region"],
            starting_on=at(1),
            ending_before=at(1, 2),
        )
    }
    assert storage == {"us-east": 40, "eu-west": 12, UNRATED_REGION: 7}
