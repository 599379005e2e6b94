"""uniqueness_key, Idempotency-Key replay, ingest dedupe, and OpenAPI request validation naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import metronome
import pytest
from metronome_world import World, at, ingest, llm, make_catalogue, new_customer, set_billable_status


def test_contract_uniqueness_key_conflicts_on_reuse(shared_world: World) -> None:
    client = shared_world.client
    customer = new_customer(client, "uk-1")
    first = client.v1.contracts.create(customer_id=customer, starting_at=at(1), uniqueness_key="mig-1:contract")
    with pytest.raises(metronome.ConflictError) as error:
        client.v1.contracts.create(customer_id=customer, starting_at=at(1), uniqueness_key="mig-1:contract")
    assert error.value.body == {"message": "This uniqueness key has already been used."}
    # the migration's recovery path: find the contract by its uniqueness_key
    found = [c.id for c in client.v2.contracts.list(customer_id=customer) if c.uniqueness_key == "mig-1:contract"]
    assert found == [first.data.id]


def test_customer_commit_uniqueness_key(shared_world: World) -> None:
    client = shared_world.client
    cat = make_catalogue(client)
    customer = new_customer(client, "uk-2")
    spec = {
        "customer_id": customer,
        "type": "PREPAID",
        "priority": 1,
        "product_id": cat.commit_product_id,
        "access_schedule": {"schedule_items": [{"amount": 700, "starting_at": at(1), "ending_before": at(1, 3)}]},
        "uniqueness_key": "mig-2:commit",
    }
    client.v1.customers.commits.create(**spec)  # type: ignore[arg-type]
    with pytest.raises(metronome.ConflictError):
        client.v1.customers.commits.create(**spec)  # type: ignore[arg-type]
    client.v1.customers.credits.create(
        customer_id=customer,
        priority=2,
        product_id=cat.credit_product_id,
        name="goodwill",
        access_schedule={"schedule_items": [{"amount": 300, "starting_at": at(1), "ending_before": at(1, 3)}]},
    )
    balances = client.v1.contracts.list_balances(customer_id=customer, include_balance=True).data
    assert sorted((b.type, b.balance) for b in balances) == [("CREDIT", 300), ("PREPAID", 700)]


def test_idempotency_key_replays_and_conflicts(shared_world: World) -> None:
    client = shared_world.client
    customer = new_customer(client, "idem-1")
    first = set_billable_status(client, customer, "unbillable", at(1), key="mig-3:status")
    # the same key and body replays the cached reply, even after the state changed
    set_billable_status(client, customer, "billable", at(1), key="mig-3:other")
    again = set_billable_status(client, customer, "unbillable", at(1), key="mig-3:status")
    assert again == first == {"data": {"id": customer, "current_billable_status": "unbillable"}}
    assert client.v1.customers.retrieve(customer_id=customer).data.current_billable_status.value == "billable"
    with pytest.raises(metronome.ConflictError):
        set_billable_status(client, customer, "billable", at(2), key="mig-3:status")


def test_idempotency_key_replays_errors(shared_world: World) -> None:
    client = shared_world.client
    missing = "00000000-0000-4000-8000-00000000abcd"
    for _ in range(2):
        with pytest.raises(metronome.NotFoundError):
            set_billable_status(client, missing, "billable", at(1), key="mig-4:status")
    requests = httpx.get(shared_world.emulator.url + "/_emulator/requests").json()
    assert [r["status"] for r in requests if r["headers"].get("idempotency-key") == "mig-4:status"] == [404, 404]


def test_ingest_dedupes_on_transaction_id_and_resolves_aliases(shared_world: World) -> None:
    client = shared_world.client
    cat = make_catalogue(client)
    customer = new_customer(client, "dedupe")
    now = shared_world.clock.now_datetime()
    ingest(client, [llm("dedupe", "d-1", now, "gpt-4", 10), llm(customer, "d-2", now, "gpt-4", 5)])
    ingest(client, [llm("dedupe", "d-1", now, "gpt-4", 999)])  # duplicate: ignored
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    (row,) = client.v1.usage.list_with_groups(
        customer_id=customer,
        billable_metric_id=cat.metric_id,
        window_size="NONE",
        starting_on=day,
        ending_before=day.replace(day=day.day) + (at(2) - at(1)),
    )
    assert row.value == 15


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"billable_status": "billable", "effective_at": "2030-01-01T00:00:00Z"}, "customer_id"),
        (
            {
                "customer_id": "00000000-0000-4000-8000-000000000000",
                "billable_status": "maybe",
                "effective_at": "2030-01-01T00:00:00Z",
            },
            "billable_status",
        ),
        ({"customer_id": "00000000-0000-4000-8000-000000000000", "billable_status": "billable"}, "effective_at"),
    ],
)
def test_set_billable_status_is_validated_against_the_schema(shared_world: World, body: dict, field: str) -> None:
    with pytest.raises(metronome.BadRequestError) as error:
        shared_world.client.post("/v1/customers/setBillableStatus", cast_to=object, body=body)
    assert field in error.value.body["message"]


def test_schema_rejects_missing_name_and_naive_datetimes(shared_world: World) -> None:
    client = shared_world.client
    with pytest.raises(metronome.BadRequestError) as error:
        client.post("/v1/customers", cast_to=object, body={"ingest_aliases": ["x"]})
    assert "name" in error.value.body["message"]
    customer = new_customer(client, "naive")
    with pytest.raises(metronome.BadRequestError) as error:
        client.v1.contracts.create(customer_id=customer, starting_at=datetime(2030, 1, 1))  # no zone
    assert "starting_at" in error.value.body["message"]
    with pytest.raises(metronome.BadRequestError):
        client.v1.usage.ingest(usage=[])  # 1-100 events


def test_injected_faults_answer_in_metronome_shape(shared_world: World) -> None:
    url = shared_world.emulator.url
    httpx.post(url + "/_emulator/faults", json={"path": "^/v1/customers$", "status": 429, "method": "GET", "times": 1})
    with pytest.raises(metronome.RateLimitError) as error:
        shared_world.client.v1.customers.list()
    assert error.value.body == {"message": "injected fault"}
    shared_world.client.v1.customers.list()  # the fault fired once
    httpx.delete(url + "/_emulator/faults")


def test_injected_server_errors_by_rate_and_sdk_retries(world: World) -> None:
    url = world.emulator.url
    httpx.post(url + "/_emulator/faults", json={"path": "^/v1/customers$", "status": 503, "method": "GET", "rate": 0.5})
    outcomes = []
    for _ in range(40):
        try:
            world.client.v1.customers.list()
            outcomes.append("ok")
        except metronome.InternalServerError as error:
            assert error.status_code == 503 and error.body == {"message": "injected fault"}
            outcomes.append("503")
    assert 0 < outcomes.count("503") < 40
    httpx.delete(url + "/_emulator/faults")
    # two 500s then success: the SDK's own retries get through (retry-after-ms keeps its back-off short)
    httpx.post(
        url + "/_emulator/faults",
        json={
            "path": "^/v1/customers$",
            "status": 500,
            "method": "POST",
            "times": 2,
            "headers": {"retry-after-ms": "1"},
        },
    )
    httpx.delete(url + "/_emulator/requests")
    customer = world.client.with_options(max_retries=2).v1.customers.create(name="retried").data.id
    log = httpx.get(url + "/_emulator/requests").json()
    assert [(r["status"], r["injected"]) for r in log] == [(500, True), (500, True), (200, False)]
    assert world.client.v1.customers.retrieve(customer_id=customer).data.name == "retried"


def test_rate_limit_answers_429_until_turned_off(world: World) -> None:
    url = world.emulator.url
    httpx.post(url + "/_emulator/rate_limit", json={"per_second": 0.001, "burst": 2})
    world.client.v1.customers.list()
    world.client.v1.customers.list()
    with pytest.raises(metronome.RateLimitError) as error:
        world.client.v1.customers.list()
    assert "message" in error.value.body
    httpx.post(url + "/_emulator/rate_limit", json={})
    world.client.v1.customers.list()


def test_emulator_follows_the_world_clock(world: World) -> None:
    world.set_time(at(3, 2, hour=7))
    seen = httpx.get(world.emulator.url + "/_emulator/clock").json()["now"]
    assert at(3, 2, hour=7).timestamp() <= seen < at(3, 2, hour=8).timestamp()  # the clock runs on from there


def test_state_survives_a_restart(world: World) -> None:
    from billmig_local.emulators.metronome import start

    cat = make_catalogue(world.client)
    customer = new_customer(world.client, "persist")
    world.client.v1.contracts.create(
        customer_id=customer, starting_at=at(1), rate_card_id=cat.rate_card_id, uniqueness_key="persist:contract"
    )
    world.set_time(at(20))
    ingest(world.client, [llm("persist", "p-1", at(10), "gpt-4", 100)])
    world.set_time(at(3, 2))
    before = world.client.v1.customers.invoices.list(customer_id=customer).data
    world.emulator.server.stop()
    world.emulator.extra["store"].close()

    world.emulator = start(clock=world.clock, state_dir=world.state_dir)
    client = metronome.Metronome(bearer_token="t", base_url=world.emulator.url, max_retries=0)
    assert [c.id for c in client.v1.customers.list(ingest_alias="persist")] == [customer]
    after = client.v1.customers.invoices.list(customer_id=customer).data
    assert [(i.id, i.status, i.total) for i in after] == [(i.id, i.status, i.total) for i in before]
    assert after[0].total == 200
    with pytest.raises(metronome.ConflictError):
        client.v1.contracts.create(customer_id=customer, starting_at=at(1), uniqueness_key="persist:contract")
    assert datetime.now(UTC) < at(1)  # sanity: the world clock, not real time, drove all of the above
    client.close()
