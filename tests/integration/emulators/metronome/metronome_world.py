"""Helpers for the Metronome emulator tests (a plainly named module, importable from the test files)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billmig_local.clock import WorldClock
from billmig_local.emulators.metronome import start
from billmig_local.emulators.server import RunningEmulator
from metronome import Metronome

JAN_1 = datetime(2030, 1, 1, tzinfo=UTC)
"""Billing tests live in January 2030: always in the future of the real clock, so `clock.set` can reach it."""


def at(day: int, month: int = 1, hour: int = 0) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


@dataclass
class World:
    emulator: RunningEmulator
    clock: WorldClock
    client: Metronome
    state_dir: Path

    @property
    def no_retry(self) -> Metronome:
        return self.client.with_options(max_retries=0)

    def set_time(self, moment: datetime) -> None:
        self.clock.set(moment.timestamp())


@dataclass
class Catalogue:
    """A small catalogue: token usage priced per model, and FIXED products for commits and credits."""

    metric_id: str
    tokens_product_id: str
    calls_metric_id: str
    calls_product_id: str
    commit_product_id: str
    credit_product_id: str
    rate_card_id: str


def start_world(tmp_path: Path) -> tuple[RunningEmulator, WorldClock]:
    clock = WorldClock(tmp_path / "clock.json", start_at=JAN_1.timestamp())
    return start(clock=clock, state_dir=tmp_path), clock


def make_catalogue(client: Metronome) -> Catalogue:
    tokens = client.v1.billable_metrics.create(
        name="LLM tokens",
        event_type_filter={"in_values": ["llm_call"]},
        aggregation_type="SUM",
        aggregation_key="tokens",
        property_filters=[{"name": "tokens", "exists": True}],
        group_keys=[["model"]],
    ).data.id
    calls = client.v1.billable_metrics.create(
        name="API calls", event_type_filter={"in_values": ["api_call"]}, aggregation_type="COUNT"
    ).data.id
    tokens_product = client.v1.contracts.products.create(
        name="Tokens", type="USAGE", billable_metric_id=tokens, pricing_group_key=["model"]
    ).data.id
    calls_product = client.v1.contracts.products.create(
        name="API calls", type="USAGE", billable_metric_id=calls
    ).data.id
    commit_product = client.v1.contracts.products.create(name="Prepaid commit", type="FIXED").data.id
    credit_product = client.v1.contracts.products.create(name="Promotional credit", type="FIXED").data.id
    rate_card = client.v1.contracts.rate_cards.create(name="Standard").data.id
    since = datetime(2020, 1, 1, tzinfo=UTC)
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card,
        product_id=tokens_product,
        pricing_group_values={"model": "gpt-4"},
        starting_at=since,
        entitled=True,
        rate_type="FLAT",
        price=2,
    )
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card,
        product_id=tokens_product,
        pricing_group_values={"model": "small"},
        starting_at=since,
        entitled=True,
        rate_type="FLAT",
        price=0.5,
    )
    # graduated: first 10 calls at 20c, next 40 at 15c, the rest at 10c
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card,
        product_id=calls_product,
        starting_at=since,
        entitled=True,
        rate_type="TIERED",
        tiers=[{"size": 10, "price": 20}, {"size": 40, "price": 15}, {"price": 10}],
    )
    return Catalogue(tokens, tokens_product, calls, calls_product, commit_product, credit_product, rate_card)


def new_customer(client: Metronome, alias: str, *, stripe_customer: str | None = "cus_test") -> str:
    configs: list[Any] = []
    if stripe_customer:
        configs = [
            {
                "billing_provider": "stripe",
                "delivery_method": "direct_to_billing_provider",
                "configuration": {
                    "stripe_customer_id": stripe_customer,
                    "stripe_collection_method": "charge_automatically",
                },
            }
        ]
    return client.v1.customers.create(
        name=f"Customer {alias}", ingest_aliases=[alias], customer_billing_provider_configurations=configs
    ).data.id


def ingest(client: Metronome, events: list[dict[str, Any]]) -> None:
    for chunk in range(0, len(events), 100):
        client.v1.usage.ingest(usage=events[chunk : chunk + 100])


def llm(alias: str, tid: str, when: datetime, model: str, tokens: int) -> dict[str, Any]:
    return {
        "customer_id": alias,
        "event_type": "llm_call",
        "timestamp": when.isoformat(),
        "transaction_id": tid,
        "properties": {"model": model, "tokens": tokens},
    }


def api_calls(alias: str, prefix: str, when: datetime, count: int) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": alias,
            "event_type": "api_call",
            "timestamp": when.isoformat(),
            "transaction_id": f"{prefix}-{i}",
            "properties": {},
        }
        for i in range(count)
    ]


def set_billable_status(
    client: Metronome, customer_id: str, status: str, effective_at: datetime, key: str | None = None
) -> Any:
    options: Any = {"headers": {"Idempotency-Key": key}} if key else {}
    return client.post(
        "/v1/customers/setBillableStatus",
        cast_to=object,
        body={
            "customer_id": customer_id,
            "billable_status": status,
            "effective_at": effective_at.isoformat().replace("+00:00", "Z"),
        },
        options=options,
    )
