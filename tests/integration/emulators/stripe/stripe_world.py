"""Helpers for the Stripe emulator tests (a plainly named module, importable from the test files)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import stripe
from billmig_local.clock import WorldClock
from billmig_local.emulators.server import RunningEmulator
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


@dataclass
class Prices:
    """A small catalogue: graduated, volume and per-unit metered prices and a licensed monthly fee."""

    graduated: str  # sum meter "t.api": 0-1000 free, 1001-10000 at 2c, then 1c
    volume: str  # sum meter "t.storage": up to 100 at 5c, beyond all units at 3c + 100c flat
    per_unit: str  # sum meter "t.compute": 3c per minute
    licensed: str  # 9900c per month


def make_prices(client: stripe.StripeClient, suffix: str = "") -> Prices:
    c = client.v1
    product = c.products.create(params={"name": "Platform" + suffix}).id

    def meter(name: str) -> str:
        return c.billing.meters.create(
            params={
                "display_name": name,
                "event_name": f"t.{name}{suffix}",
                "default_aggregation": {"formula": "sum"},
            }
        ).id

    def metered(meter_id: str, **price: object) -> str:
        params: dict[str, object] = {
            "product": product,
            "currency": "usd",
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
            **price,
        }
        return c.prices.create(params=params).id  # type: ignore[arg-type]

    graduated = metered(
        meter("api"),
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            {"up_to": 1000, "unit_amount": 0},
            {"up_to": 10000, "unit_amount": 2},
            {"up_to": "inf", "unit_amount": 1},
        ],
    )
    volume = metered(
        meter("storage"),
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=[{"up_to": 100, "unit_amount": 5}, {"up_to": "inf", "unit_amount": 3, "flat_amount": 100}],
    )
    per_unit = metered(meter("compute"), unit_amount=3)
    licensed = c.prices.create(
        params={"product": product, "currency": "usd", "unit_amount": 9900, "recurring": {"interval": "month"}}
    ).id
    return Prices(graduated, volume, per_unit, licensed)


def customer_on_clock(client: stripe.StripeClient, frozen_time: int, *, payment_method: bool = True) -> tuple[str, str]:
    """A fresh test clock at `frozen_time` and a customer attached to it: (clock id, customer id)."""
    c = client.v1
    clock = c.test_helpers.test_clocks.create(params={"frozen_time": frozen_time}).id
    params: dict[str, object] = {"test_clock": clock, "email": "billing@example.com"}
    if payment_method:
        params |= {"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    customer = c.customers.create(params=params).id  # type: ignore[arg-type]
    return clock, customer


def usage(client: stripe.StripeClient, event_name: str, customer: str, value: int, identifier: str, ts: int) -> None:
    client.v1.billing.meter_events.create(
        params={
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "identifier": identifier,
            "timestamp": ts,
        }
    )
