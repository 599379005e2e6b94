"""v2 contract edits through the SDK: add and update commits (hand-computed effects), prepaid balance thresholds."""

from __future__ import annotations

from typing import Any

import metronome
import pytest
from metronome_world import Catalogue, World, at, ingest, llm, new_customer

FOREVER = at(1, 1).replace(year=2031)


def start_contract(world: World, cat: Catalogue, customer: str, **extra: Any) -> str:
    return world.client.v1.contracts.create(
        customer_id=customer,
        starting_at=at(1),
        rate_card_id=cat.rate_card_id,
        usage_statement_schedule={"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"},
        **extra,
    ).data.id


def january(world: World, customer: str) -> Any:
    return next(i for i in world.client.v1.customers.invoices.list(customer_id=customer, type="USAGE"))


def test_add_then_update_a_commit(world: World, catalogue: Catalogue) -> None:
    client = world.client
    customer = new_customer(client, "edit")
    contract_id = start_contract(world, catalogue, customer)
    world.set_time(at(20))
    ingest(client, [llm("edit", "e1", at(10), "gpt-4", 800)])  # 1600
    paid = {
        "type": "PREPAID",
        "product_id": catalogue.commit_product_id,
        "priority": 1,
        "name": "Migrated balance",
        "access_schedule": {"schedule_items": [{"amount": 1000, "starting_at": at(1), "ending_before": FOREVER}]},
        "invoice_schedule": {"schedule_items": [{"timestamp": at(1), "amount": 1000}], "do_not_invoice": True},
    }
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        add_commits=[paid],  # type: ignore[list-item]
        uniqueness_key="mig-9:add-commit",
        extra_headers={"Idempotency-Key": "mig-9:add-commit:1"},
    )
    # a retry of the same step under the same header replays the first reply instead of a 409
    replay = client.v2.contracts.with_raw_response.edit(
        customer_id=customer,
        contract_id=contract_id,
        add_commits=[paid],  # type: ignore[list-item]
        uniqueness_key="mig-9:add-commit",
        extra_headers={"Idempotency-Key": "mig-9:add-commit:1"},
    )
    assert (replay.status_code, replay.headers.get("x-idempotent-replayed")) == (200, "true")
    assert replay.parse().data.id == contract_id
    # the same edit again under another header: the uniqueness_key stops it
    with pytest.raises(metronome.ConflictError) as error:
        client.v2.contracts.edit(
            customer_id=customer,
            contract_id=contract_id,
            add_commits=[paid],  # type: ignore[list-item]
            uniqueness_key="mig-9:add-commit",
            extra_headers={"Idempotency-Key": "mig-9:add-commit:2"},
        )
    assert error.value.body["message"] == "This uniqueness key has already been used."
    (commit,) = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data.commits
    # 1600 of usage, 1000 paid by the commit; do_not_invoice: no scheduled invoice
    invoice = january(world, customer)
    assert (invoice.total, [li.total for li in invoice.line_items if li.commit_id]) == (600, [-1000])
    assert client.v1.customers.invoices.list(customer_id=customer, type="SCHEDULED").data == []

    (segment,) = commit.access_schedule.schedule_items
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        update_commits=[
            {"commit_id": commit.id, "access_schedule": {"update_schedule_items": [{"id": segment.id, "amount": 3000}]}}
        ],
    )
    assert january(world, customer).total == 0  # 3000 now covers all 1600
    got = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id, include_balance=True).data
    assert got.commits[0].balance == 3000 - 1600

    # end the commit's access before the usage: it no longer pays for it, and its balance expires
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        update_commits=[
            {
                "commit_id": commit.id,
                "priority": 5,
                "access_schedule": {"update_schedule_items": [{"id": segment.id, "ending_before": at(8)}]},
            }
        ],
    )
    assert january(world, customer).total == 1600
    got = client.v2.contracts.retrieve(
        customer_id=customer, contract_id=contract_id, include_balance=True, include_ledgers=True
    ).data
    assert (got.commits[0].priority, got.commits[0].balance) == (5, 0)
    assert [(e.type, e.amount) for e in got.commits[0].ledger or []] == [
        ("PREPAID_COMMIT_SEGMENT_START", 3000),
        ("PREPAID_COMMIT_EXPIRATION", -3000),
    ]


def test_edit_of_an_unknown_contract_is_a_400_with_a_code(world: World, catalogue: Catalogue) -> None:
    customer = new_customer(world.client, "nocontract")
    with pytest.raises(metronome.BadRequestError) as error:
        world.client.v2.contracts.edit(customer_id=customer, contract_id="00000000-0000-4000-8000-000000000001")
    assert error.value.body["code"] == "ContractNotFound"


def test_enabling_a_threshold_configuration_recharges_at_once(world: World, catalogue: Catalogue) -> None:
    client = world.client
    customer = new_customer(client, "enable")
    contract_id = start_contract(
        world,
        catalogue,
        customer,
        commits=[
            {
                "type": "PREPAID",
                "product_id": catalogue.commit_product_id,
                "priority": 1,
                "name": "Migrated balance",
                "access_schedule": {
                    "schedule_items": [{"amount": 2000, "starting_at": at(1), "ending_before": FOREVER}]
                },
            }
        ],
    )
    with pytest.raises(metronome.BadRequestError) as error:
        client.v2.contracts.edit(
            customer_id=customer,
            contract_id=contract_id,
            update_prepaid_balance_threshold_configuration={"is_enabled": True},
        )
    assert error.value.body["code"] == "not_configured"
    # added disabled (during the parallel run): nothing happens although 2000 < 3000
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        add_prepaid_balance_threshold_configuration={
            "commit": {"product_id": catalogue.commit_product_id, "name": "Auto recharge"},
            "is_enabled": False,
            "payment_gate_config": {"payment_gate_type": "NONE"},
            "threshold_amount": 3000,
            "recharge_to_amount": 5000,
        },
    )
    got = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data
    assert [c.name for c in got.commits] == ["Migrated balance"]
    # enabled at cutover: evaluated at once, 5000 - 2000 = 3000 added and invoiced
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        update_prepaid_balance_threshold_configuration={"is_enabled": True},
    )
    got = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data
    assert got.prepaid_balance_threshold_configuration is not None
    assert got.prepaid_balance_threshold_configuration.is_enabled is True
    assert [(c.name, c.access_schedule.schedule_items[0].amount) for c in got.commits] == [
        ("Migrated balance", 2000),
        ("Auto recharge", 3000),
    ]
    (scheduled,) = client.v1.customers.invoices.list(customer_id=customer, type="SCHEDULED").data
    assert scheduled.total == 3000


def test_a_stripe_gated_recharge_that_cannot_be_paid_turns_the_threshold_off(
    world: World, catalogue: Catalogue
) -> None:
    client = world.client
    customer = new_customer(client, "gated", stripe_customer=None)  # nothing to charge the recharge to
    contract_id = start_contract(world, catalogue, customer)
    client.v2.contracts.edit(
        customer_id=customer,
        contract_id=contract_id,
        add_prepaid_balance_threshold_configuration={
            "commit": {"product_id": catalogue.commit_product_id, "name": "Auto recharge"},
            "is_enabled": True,
            "payment_gate_config": {"payment_gate_type": "STRIPE", "stripe_config": {"payment_type": "INVOICE"}},
            "threshold_amount": 1000,
            "recharge_to_amount": 5000,
        },
    )
    got = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract_id).data
    assert got.prepaid_balance_threshold_configuration is not None
    assert got.prepaid_balance_threshold_configuration.is_enabled is False
    assert got.commits == []
