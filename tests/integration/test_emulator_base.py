"""The control plane every emulator shares: faults, rate limit, latency and the request log, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from billmig_local.clock import WorldClock
from billmig_local.emulators.control_plane import EmulatorControl
from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import EmulatorServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"got": (await request.body()).decode()})


@pytest.fixture()
def server() -> Iterator[tuple[str, EmulatorControl]]:
    clock = WorldClock()
    control = EmulatorControl(
        Starlette(
            routes=[Route(path, echo, methods=["GET", "POST"]) for path in ("/v1/things", "/v1/other", "/v1/own")]
        ),
        name="test",
        error_response=lambda status, message, code: JSONResponse(
            {"error": {"message": message, "code": code}}, status
        ),
        now=clock.now,
        rate_limit_presets={"tight": (1.0, 2.0), "endpoints": (0.001, 2.0, 0.001, (("GET /v1/own", 1000.0),))},
    )
    running = EmulatorServer(control)
    running.start()
    yield running.url, control
    running.stop()


def test_a_fault_answers_in_the_vendor_shape_for_as_many_times_as_asked(server: tuple[str, EmulatorControl]) -> None:
    url, _ = server
    added = httpx.post(
        f"{url}/_emulator/faults",
        json={"path": "^/v1/things$", "status": 503, "times": 2, "headers": {"Stripe-Should-Retry": "true"}},
    )
    assert added.status_code == 200
    first = httpx.post(f"{url}/v1/things", content=b"a=1")
    assert first.status_code == 503
    assert first.json() == {"error": {"message": "injected fault", "code": "injected_fault"}}
    assert first.headers["stripe-should-retry"] == "true"
    assert httpx.get(f"{url}/v1/things").status_code == 503
    assert httpx.get(f"{url}/v1/things").status_code == 200


def test_the_request_log_keeps_bodies_statuses_and_idempotency_keys(server: tuple[str, EmulatorControl]) -> None:
    url, _ = server
    httpx.post(f"{url}/v1/things", content=b"x=1", headers={"Idempotency-Key": "k-1"})
    log = httpx.get(f"{url}/_emulator/requests").json()
    assert [(e["method"], e["path"], e["body"], e["status"], e["headers"].get("idempotency-key")) for e in log] == [
        ("POST", "/v1/things", "x=1", 200, "k-1")
    ]
    httpx.delete(f"{url}/_emulator/requests")
    assert httpx.get(f"{url}/_emulator/requests").json() == []


def test_a_rate_limit_preset_answers_429_once_the_burst_is_spent(server: tuple[str, EmulatorControl]) -> None:
    url, _ = server
    assert httpx.post(f"{url}/_emulator/rate_limit", json={"preset": "tight"}).status_code == 200
    statuses = [httpx.get(f"{url}/v1/things").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    assert httpx.post(f"{url}/_emulator/rate_limit", json={}).status_code == 200
    assert httpx.get(f"{url}/v1/things").status_code == 200


def test_per_endpoint_limits_refuse_one_endpoint_and_own_limits_spend_nothing_else(
    server: tuple[str, EmulatorControl],
) -> None:
    """Each endpoint has a bucket of its own beside the global one; an endpoint with its own limit spends only that
    (a global burst of 2 and an endpoint rate of one per 1,000 s: the second call to an endpoint is refused, a first
    call elsewhere answers until the global burst is gone, and the own-limit endpoint answers throughout)."""
    url, _ = server
    answer = httpx.post(f"{url}/_emulator/rate_limit", json={"preset": "endpoints"}).json()
    assert answer == {"per_second": 0.001, "per_endpoint": 0.001, "own": {"GET /v1/own": 1000.0}}
    assert httpx.get(f"{url}/v1/things").status_code == 200
    assert httpx.get(f"{url}/v1/things").status_code == 429  # its endpoint's bucket is empty
    assert [httpx.get(f"{url}/v1/own").status_code for _ in range(5)] == [200] * 5
    assert httpx.get(f"{url}/v1/other").status_code == 200  # the global bucket's second token
    assert httpx.post(f"{url}/v1/other").status_code == 429  # a new endpoint, but the global burst is spent
    assert httpx.post(f"{url}/_emulator/rate_limit", json={}).json() == {"per_second": None}
    assert httpx.get(f"{url}/v1/things").status_code == 200


def test_the_object_store_survives_a_restart_in_insertion_order(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "state.db")
    for n in (3, 1, 2):
        store.put("customer", f"cus_{n}", {"id": f"cus_{n}", "n": n})
    store.put("customer", "cus_1", {"id": "cus_1", "n": 10})
    store.delete("customer", "cus_2")
    store.close()
    reopened = ObjectStore(tmp_path / "state.db")
    assert [c["id"] for c in reopened.all("customer")] == ["cus_3", "cus_1"]
    assert reopened.get("customer", "cus_1") == {"id": "cus_1", "n": 10}


def test_the_object_store_finds_by_field_in_insertion_order_through_changes_and_a_restart(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "state.db")
    store.put("contract", "c1", {"id": "c1", "customer_id": "a"})
    store.put("contract", "c2", {"id": "c2", "customer_id": "b"})
    assert [c["id"] for c in store.where("contract", "customer_id", "a")] == ["c1"]  # the index is built here
    store.put("contract", "c3", {"id": "c3", "customer_id": "a"})
    store.put("contract", "c1", {"id": "c1", "customer_id": "a", "archived_at": "now"})  # an update keeps its place
    assert [c["id"] for c in store.where("contract", "customer_id", "a")] == ["c1", "c3"]
    moved = store.get("contract", "c3")
    assert moved is not None
    moved["customer_id"] = "b"  # changed in place, then put again
    store.put("contract", "c3", moved)
    assert [c["id"] for c in store.where("contract", "customer_id", "a")] == ["c1"]
    assert [c["id"] for c in store.where("contract", "customer_id", "b")] == ["c2", "c3"]
    store.delete("contract", "c2")
    assert [c["id"] for c in store.where("contract", "customer_id", "b")] == ["c3"]
    store.put("contract", "c2", {"id": "c2", "customer_id": "b"})  # deleted and made again: last, as in `all`
    assert [c["id"] for c in store.where("contract", "customer_id", "b")] == ["c3", "c2"]
    assert [c["id"] for c in store.all("contract")] == ["c1", "c3", "c2"]
    store.delete("contract", "c2")
    assert store.where("contract", "customer_id", "nobody") == [] and store.where("invoice", "customer_id", "a") == []
    store.close()
    reopened = ObjectStore(tmp_path / "state.db")
    assert [c["id"] for c in reopened.where("contract", "customer_id", "b")] == ["c3"]
    reopened.put("contract", "c4", {"id": "c4", "customer_id": "b"})
    assert [c["id"] for c in reopened.where("contract", "customer_id", "b")] == ["c3", "c4"]
