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
        Starlette(routes=[Route("/v1/things", echo, methods=["GET", "POST"])]),
        name="test",
        error_response=lambda status, message, code: JSONResponse(
            {"error": {"message": message, "code": code}}, status
        ),
        now=clock.now,
        rate_limit_presets={"tight": (1.0, 2.0)},
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
