"""Idempotency, injected faults against the SDK's retry rules, the rate limit, meter event rules and restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import stripe
from billmig_local.emulators.control_plane import FaultRule
from stripe_world import World, at, client_for, customer_on_clock, make_prices, start_world, usage


def _logged(world: World, method: str, path: str) -> list[dict[str, object]]:
    log = httpx.get(world.emulator.url + "/_emulator/requests").json()
    return [entry for entry in log if entry["method"] == method and entry["path"] == path]


def test_idempotency_replays_success_and_errors_and_refuses_other_params(shared_world: World) -> None:
    c = shared_world.client.v1
    first = c.customers.create(params={"email": "idem@example.com"}, options={"idempotency_key": "mig-1:customer"})
    again = c.customers.create(params={"email": "idem@example.com"}, options={"idempotency_key": "mig-1:customer"})
    assert again.id == first.id
    assert [x.id for x in c.customers.list(params={"email": "idem@example.com"}).data] == [first.id]

    with pytest.raises(stripe.InvalidRequestError) as failed:
        c.subscriptions.create(
            params={"customer": first.id, "items": [{"price": "price_missing"}]},
            options={"idempotency_key": "mig-1:subscription"},
        )
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        c.subscriptions.create(
            params={"customer": first.id, "items": [{"price": "price_missing"}]},
            options={"idempotency_key": "mig-1:subscription"},
        )
    assert replayed.value.user_message == failed.value.user_message
    assert replayed.value.http_status == 404

    with pytest.raises(stripe.IdempotencyError) as reused:
        c.customers.create(params={"email": "other@example.com"}, options={"idempotency_key": "mig-1:customer"})
    assert reused.value.http_status == 400
    assert reused.value.error is not None and reused.value.error.type == "idempotency_error"


def test_500_with_should_retry_is_retried_under_the_same_key(shared_world: World) -> None:
    control = shared_world.emulator.control
    control.add_fault(
        FaultRule(path="^/v1/products$", method="POST", status=500, times=1, headers={"Stripe-Should-Retry": "true"})
    )
    httpx.delete(shared_world.emulator.url + "/_emulator/requests")
    product = client_for(shared_world.emulator.url, retries=2).v1.products.create(params={"name": "Retried"})
    attempts = _logged(shared_world, "POST", "/v1/products")
    assert [a["status"] for a in attempts] == [500, 200]
    keys = {a["headers"]["idempotency-key"] for a in attempts}  # type: ignore[index]
    assert len(keys) == 1
    assert shared_world.client.v1.products.retrieve(product.id).name == "Retried"


def test_500_with_should_retry_false_and_429_are_not_retried(shared_world: World) -> None:
    control = shared_world.emulator.control
    retrying = client_for(shared_world.emulator.url, retries=2).v1
    control.add_fault(
        FaultRule(path="^/v1/products$", method="POST", status=500, times=1, headers={"Stripe-Should-Retry": "false"})
    )
    httpx.delete(shared_world.emulator.url + "/_emulator/requests")
    with pytest.raises(stripe.APIError):
        retrying.products.create(params={"name": "No retry"})
    assert len(_logged(shared_world, "POST", "/v1/products")) == 1

    control.add_fault(FaultRule(path="^/v1/products$", method="POST", status=429, times=1))
    httpx.delete(shared_world.emulator.url + "/_emulator/requests")
    with pytest.raises(stripe.RateLimitError) as limited:
        retrying.products.create(params={"name": "Rate limited"})
    assert limited.value.http_status == 429
    assert limited.value.error is not None and limited.value.error.code == "rate_limit"
    assert len(_logged(shared_world, "POST", "/v1/products")) == 1


def test_409_lock_conflict_is_retried_by_the_sdk(shared_world: World) -> None:
    shared_world.emulator.control.add_fault(FaultRule(path="^/v1/customers$", method="POST", status=409, times=1))
    httpx.delete(shared_world.emulator.url + "/_emulator/requests")
    created = client_for(shared_world.emulator.url, retries=1).v1.customers.create(params={"name": "Locked"})
    assert created.name == "Locked"
    assert [a["status"] for a in _logged(shared_world, "POST", "/v1/customers")] == [409, 200]
    with pytest.raises(stripe.APIError) as conflict:
        shared_world.emulator.control.add_fault(FaultRule(path="^/v1/customers$", method="POST", status=409, times=1))
        shared_world.client.v1.customers.create(params={"name": "Locked again"})
    assert conflict.value.http_status == 409
    assert conflict.value.error is not None and conflict.value.error.code == "lock_timeout"


def test_rate_limit_presets_and_a_limit_that_refuses_at_once(world: World) -> None:
    url = world.emulator.url + "/_emulator/rate_limit"
    assert httpx.post(url, json={"preset": "stripe_sandbox"}).json() == {"per_second": 25.0, "per_endpoint": 25.0}
    assert httpx.post(url, json={"preset": "stripe_live"}).json() == {
        "per_second": 100.0,
        "per_endpoint": 25.0,
        "own": {"POST /v1/billing/meter_events": 1000.0, "POST /v2/billing/meter_event_stream": 10000.0},
    }
    httpx.post(url, json={"per_second": 0.001, "burst": 1})
    world.client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        world.client.v1.customers.list()
    httpx.post(url, json={})


def test_the_per_endpoint_limit_counts_every_id_of_an_operation_as_one_endpoint(world: World) -> None:
    """Stripe's per-endpoint limit is per named operation: retrieving two customers spends one endpoint's budget,
    while another operation still answers from the global one."""
    first = world.client.v1.customers.create(params={"name": "one"}).id
    second = world.client.v1.customers.create(params={"name": "two"}).id
    url = world.emulator.url + "/_emulator/rate_limit"
    httpx.post(url, json={"per_second": 1000, "burst": 1000, "per_endpoint": 0.001}).raise_for_status()
    try:
        world.client.v1.customers.retrieve(first)
        with pytest.raises(stripe.RateLimitError):
            world.client.v1.customers.retrieve(second)
        assert [c.id for c in world.client.v1.customers.list().data] == [second, first]
    finally:
        httpx.post(url, json={})
    world.client.v1.customers.list()


def test_meter_event_rules(world: World) -> None:
    c = world.client.v1
    make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(10))
    usage(world.client, "t.compute", customer, 5, "once", at(10))
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        usage(world.client, "t.compute", customer, 5, "once", at(10))
    assert duplicate.value.param == "identifier"
    with pytest.raises(stripe.InvalidRequestError) as too_old:
        usage(world.client, "t.compute", customer, 5, "old", at(10) - 36 * 86400)
    assert too_old.value.param == "timestamp"
    with pytest.raises(stripe.InvalidRequestError):
        usage(world.client, "t.compute", customer, 5, "future", at(10) + 301)
    usage(world.client, "t.compute", customer, 5, "near-future", at(10) + 300)
    meter = next(m for m in c.billing.meters.list().data if m.event_name == "t.compute")
    assert c.billing.meters.deactivate(meter.id).status == "inactive"
    with pytest.raises(stripe.InvalidRequestError) as inactive:
        usage(world.client, "t.compute", customer, 5, "inactive", at(10))
    assert inactive.value.param == "event_name"
    assert c.billing.meters.reactivate(meter.id).status == "active"
    assert [m.id for m in c.billing.meters.list(params={"status": "active"}).data if m.id == meter.id] == [meter.id]


def test_subscription_items_and_test_clock_endpoints(world: World) -> None:
    c = world.client.v1
    prices = make_prices(world.client)
    clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices.licensed, "quantity": 2}], "metadata": {"m": "1"}}
    )
    added = c.subscription_items.create(params={"subscription": sub.id, "price": prices.per_unit})
    assert added.current_period_start == at(1) and added.current_period_end == at(1, 2)
    licensed = sub["items"].data[0]
    assert c.subscription_items.update(licensed.id, params={"quantity": 3}).quantity == 3
    assert {i.id for i in c.subscription_items.list(params={"subscription": sub.id}).data} == {licensed.id, added.id}
    assert c.subscription_items.delete(added.id).deleted is True
    assert [i.id for i in c.subscription_items.list(params={"subscription": sub.id}).data] == [licensed.id]
    assert c.subscriptions.retrieve(sub.id).metadata["m"] == "1"
    assert c.subscriptions.list(params={"customer": customer, "price": prices.licensed}).data[0].id == sub.id
    assert c.subscriptions.retrieve(sub.id).test_clock == clock
    assert c.customers.retrieve(customer).currency == "usd"

    c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1, 2)})
    cycle = [i for i in c.invoices.list(params={"customer": customer}).data if i.billing_reason == "subscription_cycle"]
    assert [i.total for i in cycle] == [3 * 9900]
    assert [i.id for i in c.invoices.list(params={"customer": customer, "created": {"gte": at(1, 2)}}).data] == [
        cycle[0].id
    ]
    assert c.invoices.list(params={"customer": customer, "status": "open"}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        c.test_helpers.test_clocks.advance(clock, params={"frozen_time": at(1)})
    assert clock in [x.id for x in c.test_helpers.test_clocks.list().data]
    c.customers.create(params={"test_clock": clock})
    c.customers.create(params={"test_clock": clock})
    with pytest.raises(stripe.InvalidRequestError) as full:  # Stripe allows three customers per test clock
        c.customers.create(params={"test_clock": clock})
    assert full.value.param == "test_clock"
    assert c.test_helpers.test_clocks.delete(clock).deleted is True


def test_state_survives_a_restart(tmp_path: Path) -> None:
    world = start_world(tmp_path)
    c = world.client.v1
    prices = make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(1))
    sub = c.subscriptions.create(params={"customer": customer, "items": [{"price": prices.per_unit}]})
    usage(world.client, "t.compute", customer, 11, "kept", at(1))
    c.products.create(params={"name": "Before"}, options={"idempotency_key": "restart-key"})
    world.stop()

    again = start_world(tmp_path)
    try:
        c = again.client.v1
        assert c.subscriptions.retrieve(sub.id).customer == customer
        with pytest.raises(stripe.InvalidRequestError):
            usage(again.client, "t.compute", customer, 11, "kept", at(1))  # the identifier is still known
        with pytest.raises(stripe.IdempotencyError):
            c.products.create(params={"name": "After"}, options={"idempotency_key": "restart-key"})
        newer = c.customers.create()
        assert newer.id != customer
        preview = c.invoices.create_preview(params={"customer": customer, "subscription": sub.id})
        assert preview.subtotal == 33
    finally:
        again.stop()


def test_v2_meter_event_stream_takes_batches_and_drops_what_stripe_would_reject(world: World) -> None:
    from billmig_local.clock import to_rfc3339

    c = world.client
    make_prices(world.client)
    _clock, customer = customer_on_clock(world.client, at(10))
    usage(world.client, "t.compute", customer, 1, "v1-first", at(10))
    session = c.v2.billing.meter_event_session.create()
    assert session.authentication_token.startswith("mes_tok_")

    def event(identifier: str, value: int, ts: int) -> dict[str, object]:
        return {
            "event_name": "t.compute",
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "identifier": identifier,
            "timestamp": to_rfc3339(ts),
        }

    events = [
        event("s1", 10, at(9)),
        event("s2", 20, at(9)),
        event("v1-first", 99, at(9)),
        event("old", 99, at(1, 1, year=2029)),
    ]
    c.v2.billing.meter_event_stream.create(
        params={"events": events},  # type: ignore[typeddict-item]
        options={"api_key": session.authentication_token},
    )
    meter = next(m for m in c.v1.billing.meters.list().data if m.event_name == "t.compute")
    summary = c.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": at(1), "end_time": at(11)}
    ).data
    assert [s.aggregated_value for s in summary] == [31]  # the duplicate and the too-old event are dropped
    assert world.emulator.extra["state"].stream_rejections == 2
    with pytest.raises(stripe.AuthenticationError):
        c.v2.billing.meter_event_stream.create(
            params={"events": events[:1]}, options={"api_key": "sk_test_not_a_session"}
        )  # type: ignore[typeddict-item]


def test_a_key_still_in_flight_is_a_409_the_sdk_retries_into_the_replay(world: World) -> None:
    import threading

    from suite import until

    state = world.emulator.extra["state"]
    idempotency = world.emulator.extra["idempotency"]
    first: list[str] = []
    with state.lock:  # hold the first request inside its handler
        worker = threading.Thread(
            target=lambda: first.append(
                world.client.v1.products.create(params={"name": "Slow"}, options={"idempotency_key": "busy-key"}).id
            )
        )
        worker.start()
        until(lambda: "busy-key" in idempotency.in_flight, what="the first request to hold its key")
        with pytest.raises(stripe.APIError) as busy:
            world.client.v1.products.create(params={"name": "Slow"}, options={"idempotency_key": "busy-key"})
        assert busy.value.http_status == 409
        assert busy.value.error is not None and busy.value.error.code == "idempotency_key_in_use"
    worker.join(timeout=30)
    again = client_for(world.emulator.url, retries=2).v1.products.create(
        params={"name": "Slow"}, options={"idempotency_key": "busy-key"}
    )
    assert again.id == first[0]
