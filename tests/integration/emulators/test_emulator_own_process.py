"""An emulator in a process of its own: the official SDK reaches it, the world clock moves it, the control plane
works across the boundary, and stopping the stack ends it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import stripe
from billmig_local.clock import WorldClock
from billmig_local.emulators.control_plane import FaultRule
from billmig_local.emulators.own_process import EmulatorProcess, start_in_own_process
from metronome import Metronome

DAY = 86_400


def test_an_emulator_in_its_own_process_serves_the_sdk_and_follows_the_world_clock(tmp_path: Path) -> None:
    clock = WorldClock(tmp_path / "clock.json")
    emulator = start_in_own_process("stripe", clock=clock, state_dir=tmp_path)
    try:
        process = emulator.server
        assert isinstance(process, EmulatorProcess)
        assert process.pid != os.getpid()

        target = clock.now() + 31 * DAY
        assert httpx.get(f"{emulator.url}/_emulator/clock").json()["now"] < target
        clock.set(target)  # returns once the child has moved too
        assert httpx.get(f"{emulator.url}/_emulator/clock").json()["now"] >= target

        client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": emulator.url}, max_network_retries=0)
        emulator.control.clear_log()
        made = client.v1.customers.create(params={"name": "Across the boundary"})
        assert [(r.method, r.path, r.status) for r in emulator.control.log] == [("POST", "/v1/customers", 200)]

        emulator.control.add_fault(FaultRule(path="/v1/customers", status=503, times=1))
        with pytest.raises(stripe.APIError):
            client.v1.customers.retrieve(made.id)
        assert client.v1.customers.retrieve(made.id).name == "Across the boundary"
        emulator.control.clear_faults()
    finally:
        emulator.server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emulator.url}/_emulator/clock")


def test_a_restarted_emulator_process_keeps_its_state_and_the_moved_clock(tmp_path: Path) -> None:
    clock = WorldClock(tmp_path / "clock.json")
    clock.advance(40 * DAY)
    first = start_in_own_process("metronome", clock=clock, state_dir=tmp_path)
    try:
        assert httpx.get(f"{first.url}/_emulator/clock").json()["now"] >= clock.now() - 1
        customer_id = Metronome(bearer_token="test-token", base_url=first.url).v1.customers.create(name="Kept").data.id
    finally:
        first.server.stop()
    again = start_in_own_process("metronome", clock=clock, state_dir=tmp_path)
    try:
        found = Metronome(bearer_token="test-token", base_url=again.url).v1.customers.retrieve(customer_id=customer_id)
        assert found.data.name == "Kept"
    finally:
        again.server.stop()
