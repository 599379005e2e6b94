"""Helpers for the Stripe emulator tests (a plainly named module, importable from the test files)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import stripe
from billmig_local.clock import WorldClock
from billmig_local.emulators.base import RunningEmulator
from billmig_local.emulators.stripe import start

JAN_1 = datetime(2030, 1, 1, tzinfo=UTC)
"""Billing tests live in 2030: always in the future of the real clock, so `clock.set` can reach it."""


def at(day: int, month: int = 1, hour: int = 0, year: int = 2030) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


@dataclass
class World:
    emulator: RunningEmulator
    clock: WorldClock
    client: stripe.StripeClient
    state_dir: Path

    def set_time(self, instant: int) -> None:
        self.clock.set(instant)

    def stop(self) -> None:
        self.emulator.server.stop()
        self.emulator.extra["store"].close()


def client_for(url: str, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": url, "meter_events": url}, max_network_retries=retries
    )


def start_world(tmp_path: Path, *, start_at: datetime = JAN_1) -> World:
    clock = WorldClock(tmp_path / "clock.json", start_at=start_at.timestamp())
    emulator = start(clock=clock, state_dir=tmp_path)
    return World(emulator, clock, client_for(emulator.url), tmp_path)
