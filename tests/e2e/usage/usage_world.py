"""What the usage router tests share: the catalogue in both emulators, customers put straight into a phase through
the progress store's own API, generated usage, and the vendors' own view of it (through the SDKs)."""

from __future__ import annotations

import json
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.usage_totals import VendorUsageTotals
from billmig.usage.mapping import MeterRule, UsageRouterConfig
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe.book_of_business import ensure_catalogue
from billmig_local.stack import LocalStack
from metronome import Metronome

REPO = Path(__file__).resolve().parents[3]
ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"


@dataclass
class Customer:
    internal_id: str
    stripe_id: str
    metronome_id: str


class UsageWorld:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        url = stack.emulators["stripe"].url
        self.stripe = stripe.StripeClient("sk_test_local", base_addresses={"api": url, "meter_events": url})
        self.metronome = Metronome(bearer_token="local", base_url=stack.emulators["metronome"].url, max_retries=0)
        ensure_catalogue(self.stripe, int(stack.clock.now()) // 3600 * 3600)
        seed_catalogue(self.metronome)
        self.config = UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text())
        self.store = DynamoDBProgressStore(stack.outputs["ProgressTableName"], client=stack.client("dynamodb"))
        self.totals = VendorUsageTotals(self.stripe, self.metronome)
        self.sqs = stack.client("sqs")
        self.queue_url = stack.outputs["UsageQueueUrl"]
        self.dlq_url = stack.outputs["UsageDeadLetterQueueUrl"]
        # The stack is the worker's: an earlier module's refusals (e.g. the backfill's too-old events) are not ours.
        self.sqs.purge_queue(QueueUrl=self.dlq_url)

    def now(self) -> datetime:
        return self.stack.clock.now_datetime()

    def customers(
        self, batch: str, n: int, *, phase: str | None = "parallel_run", cutover_at: datetime | None = None
    ) -> list[Customer]:
        made = []
        for i in range(n):
            internal = f"u{secrets.token_hex(4)}_{i:03d}"
            stripe_id = self.stripe.v1.customers.create(
                params={"name": f"Usage {internal}", "metadata": {"internal_customer_id": internal}}
            ).id
            metronome_id = self.metronome.v1.customers.create(
                name=f"Usage {internal}", ingest_aliases=[internal]
            ).data.id
            if phase is not None:
                self.store.set_phase(
                    batch,
                    stripe_id,
                    phase,
                    ingest_alias=internal,
                    dual_write_from=self.now() - timedelta(days=40),
                    cutover_at=cutover_at or self.now() + timedelta(days=30),
                )
            made.append(Customer(internal, stripe_id, metronome_id))
        return made

    def generate(
        self, customers: list[Customer], per_customer: int, *, seed: int, days: int = 30
    ) -> list[dict[str, Any]]:
        """A month of usage: counts, sums and a last-value meter split by region, at whole seconds."""
        rng = random.Random(seed)
        end = self.now() - timedelta(hours=1)
        events = []
        for customer in customers:
            offsets = rng.sample(range(days * 86400), per_customer)  # distinct instants: "last" is unambiguous
            for n, offset in enumerate(offsets):
                at = end - timedelta(seconds=offset)
                kind = rng.choice(("api_call", "compute_minutes", "storage_gb"))
                properties: dict[str, Any] = {}
                if kind == "compute_minutes":
                    properties = {"minutes": rng.randint(1, 90)}
                elif kind == "storage_gb":
                    properties = {"gb": rng.randint(1, 500), "region": rng.choice(("us-east", "eu-west"))}
                events.append(
                    {
                        "event_id": f"{customer.internal_id}-{seed}-{n}",
                        "customer_id": customer.internal_id,
                        "event_name": kind,
                        "timestamp": at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                        "properties": properties,
                    }
                )
        return events

    @staticmethod
    def write(path: Path, events: list[dict[str, Any]]) -> Path:
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        return path

    def window(self) -> tuple[datetime, datetime]:
        """Whole UTC days around every generated event (Metronome's usage query takes midnight bounds)."""
        start = (self.now() - timedelta(days=33)).replace(hour=0, minute=0, second=0, microsecond=0)
        end = (self.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, end

    def sums(self, customer: Customer, *, until: datetime | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        """Per meter: (Stripe's total, Metronome's total) over the test window, read through the SDKs."""
        start, end = self.window()
        end = until or end
        return {
            rule.stripe_event_name: (
                self.totals.stripe_total(customer.stripe_id, rule, start, end),
                self.totals.metronome_total(customer.internal_id, rule, start, end),
            )
            for rule in self.config.rules
        }

    def queue_empty(self) -> bool:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return (
            attributes["ApproximateNumberOfMessages"] == "0"
            and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in the dead-letter queue, left there (received with a zero visibility timeout)."""
        found: dict[str, dict[str, Any]] = {}
        for _ in range(20):
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
            ).get("Messages", [])
            if not got or all(m["MessageId"] in found for m in got):
                break
            found.update({m["MessageId"]: m for m in got})
        return list(found.values())


def expected_sums(events: list[dict[str, Any]], config: UsageRouterConfig) -> dict[str, dict[str, Decimal]]:
    """What the meters should hold per customer, from the events themselves (sum, count, or the latest value)."""
    latest: dict[tuple[str, str], tuple[str, Decimal]] = {}
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for event in events:
        rule = next(r for r in config.rules if _matches(r, event))
        if rule.stripe_value_property is None:
            totals[event["customer_id"]][rule.stripe_event_name] += 1
        elif rule.stripe_event_name.startswith("storage_gb"):
            key = (event["customer_id"], rule.stripe_event_name)
            value = Decimal(str(event["properties"]["gb"]))
            if key not in latest or event["timestamp"] >= latest[key][0]:
                latest[key] = (event["timestamp"], value)
        else:
            totals[event["customer_id"]][rule.stripe_event_name] += Decimal(
                str(event["properties"][rule.stripe_value_property])
            )
    for (customer, meter), (_, value) in latest.items():
        totals[customer][meter] = value
    return totals


def _matches(rule: MeterRule, event: dict[str, Any]) -> bool:
    return rule.event_name == event["event_name"] and all(
        str(event["properties"].get(k)) == v for k, v in rule.match.items()
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
