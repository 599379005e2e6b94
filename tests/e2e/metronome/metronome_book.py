"""What the Metronome path tests share: a seeded Stripe book and Metronome catalogue on the local stack, the run
document a batch starts from, and the four steps called in-process the way the Lambdas call them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.metronome_ingest import MetronomeIngestSink
from billmig.adapters.metronome_sdk import MetronomeSDKTarget
from billmig.adapters.s3_import_storage import S3ImportStorage
from billmig.adapters.s3_usage_journal import S3UsageJournal
from billmig.adapters.sqs_usage_queue import SQSDeadLetters
from billmig.adapters.stripe_meter_events import StripeMeterEventSink
from billmig.adapters.stripe_sdk import StripeSDKSource
from billmig.metronome.backfill_usage import backfill_usage
from billmig.metronome.config import load_config
from billmig.metronome.contract import write_contract
from billmig.metronome.customer import prepare_customer
from billmig.metronome.parallel_run import begin_parallel_run
from billmig.metronome.ports import WRITE_METHODS, MetronomeTarget
from billmig.metronome.resolution import ResolvedConfig, resolve
from billmig.metronome.snapshot import CustomerStepRequest, snapshot_customer
from billmig.metronome.storage import MigrationRun, run_key
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.resend import ResendPorts, ResendResult, resend
from billmig.usage.routing import Destination
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe.book_of_business import SeededCustomer, ensure_catalogue, populate
from billmig_local.stack import LocalStack
from metronome import Metronome

REPO = Path(__file__).resolve().parents[3]
SAMPLE_CONFIG = REPO / "events" / "metronome" / "migration.json"
ROUTER_CONFIG = REPO / "events" / "usage" / "router.json"


def month_start(instant: float) -> datetime:
    moment = datetime.fromtimestamp(instant, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)


@dataclass
class Book:
    stack: LocalStack
    stripe: stripe.StripeClient
    metronome: Metronome
    customers: list[SeededCustomer]
    config: ResolvedConfig
    storage: S3ImportStorage
    store: DynamoDBProgressStore

    @property
    def parallel_run_start(self) -> datetime:
        return self.config.parallel_run_start

    def source(self) -> StripeSDKSource:
        return StripeSDKSource.connect("sk_test_local", self.stack.emulators["stripe"].url)

    def target(self) -> MetronomeSDKTarget:
        return MetronomeSDKTarget(Metronome(bearer_token="local", base_url=self.stack.emulators["metronome"].url))

    def profile(self, name: str) -> SeededCustomer:
        return next(c for c in self.customers if c.profile == name)

    def ready(self) -> list[SeededCustomer]:
        blocked = {"past_due", "trialing", "cancel_at_period_end", "unrated_region"}
        return [c for c in self.customers if c.profile not in blocked]

    def start_run(self, batch_id: str, parallel_run_start: datetime | None = None) -> str:
        """`parallel_run_start` moves the run's parallel run (and its cutover 40 days on) off the book's."""
        key = run_key(batch_id)
        config = self.config
        if parallel_run_start is not None:
            moved = {"parallel_run_start": parallel_run_start, "cutover_at": parallel_run_start + timedelta(days=40)}
            config = config.model_copy(update=moved)
        self.storage.write_json(key, MigrationRun(batch_id=batch_id, config=config).model_dump(mode="json"))
        return key

    def resend_ports(self) -> ResendPorts:
        """The resend's ports on the stack and the emulators (the router config of `events/usage/router.json`)."""
        stripe_url, metronome_url = self.stack.emulators["stripe"].url, self.stack.emulators["metronome"].url
        return ResendPorts(
            config=lambda: UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text()),
            journal=S3UsageJournal(self.stack.outputs["ImportBucketName"], client=self.stack.client("s3")),
            dead_letters=SQSDeadLetters(self.stack.outputs["UsageDeadLetterQueueUrl"], client=self.stack.client("sqs")),
            stripe=StripeMeterEventSink.connect("sk_test_local", stripe_url, now=self.stack.clock.now),
            metronome=MetronomeIngestSink.connect("local", metronome_url),
        )

    def run_steps(
        self,
        batch_id: str,
        customer: str,
        target: MetronomeTarget | None = None,
        resend_ports: ResendPorts | None = None,
    ) -> list[Any]:
        """Snapshot, prepare, contract, parallel run and its usage backfill for one customer, in-process."""
        request = CustomerStepRequest(
            batch_id=batch_id, stripe_customer_id=customer, run_key=run_key(batch_id), runner=f"test-{batch_id}"
        )
        target = target or self.target()
        ports = resend_ports or self.resend_ports()

        def resend_usage(
            internal_id: str, destination: Destination, since: datetime | None, until: datetime | None
        ) -> ResendResult:
            return resend(ports, internal_id, destination, since, until)

        return [
            snapshot_customer(request, self.storage, self.source(), self.store),
            prepare_customer(request, self.storage, target, self.store),
            write_contract(request, self.storage, target, self.store),
            begin_parallel_run(request, self.storage, self.store),
            backfill_usage(request, self.store, resend_usage),
        ]


def seed_book(stack: LocalStack, *, customers: int, seed: int) -> Book:
    stripe_url = stack.emulators["stripe"].url
    client = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": stripe_url, "meter_events": stripe_url}, max_network_retries=2
    )
    now = int(stack.clock.now()) // 3600 * 3600
    book = ensure_catalogue(client, now)
    seeded = populate(client, book, customers=customers, seed=seed, workers=4)
    metronome = Metronome(bearer_token="local", base_url=stack.emulators["metronome"].url, max_retries=0)
    seed_catalogue(metronome)
    source = StripeSDKSource.connect("sk_test_local", stripe_url)
    target = MetronomeSDKTarget(metronome)
    parallel_run_start = month_start(book.as_of)
    overrides = {
        "parallel_run_start": parallel_run_start.isoformat(),
        "cutover_at": next_month(parallel_run_start).isoformat(),
    }
    config = resolve(load_config(SAMPLE_CONFIG, overrides), target, source, str(SAMPLE_CONFIG))
    return Book(
        stack=stack,
        stripe=client,
        metronome=metronome,
        customers=seeded,
        config=config,
        storage=S3ImportStorage(stack.outputs["ImportBucketName"], client=stack.client("s3")),
        store=DynamoDBProgressStore(stack.outputs["ProgressTableName"], client=stack.client("dynamodb")),
    )


def fresh_customer(
    book: Book,
    internal_id: str,
    *,
    grants: bool = True,
    first_of_month: bool = False,
    threshold: int | None = None,
    paid: int = 12345,
    promotional: int = 2500,
) -> str:
    """A new Stripe customer on the book's metered prices, with a paid and a promotional grant; `first_of_month`
    bills on the 1st at 00:00Z (with a card, so Stripe and a Metronome payment gate can charge it), `threshold`
    adds `billing_thresholds.amount_gte`."""
    c = book.stripe.v1
    params: dict[str, Any] = {"name": f"Fresh {internal_id}", "metadata": {"internal_customer_id": internal_id}}
    if first_of_month:
        params |= {"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    customer = c.customers.create(params=params).id  # type: ignore[arg-type]
    prices = [p for p in c.prices.list(params={"limit": 100}).data if p.lookup_key in _RATED_LOOKUP_KEYS]
    subscription: dict[str, Any] = {"customer": customer, "items": [{"price": p.id} for p in prices]}
    if first_of_month:
        subscription["billing_cycle_anchor_config"] = {"day_of_month": 1, "hour": 0, "minute": 0, "second": 0}
    if threshold is not None:
        subscription["billing_thresholds"] = {"amount_gte": threshold}
    c.subscriptions.create(params=subscription)  # type: ignore[arg-type]
    if grants:
        for category, value, priority in (("paid", paid, 50), ("promotional", promotional, 10)):
            c.billing.credit_grants.create(
                params={
                    "customer": customer,
                    "name": f"{category} for {internal_id}",
                    "category": category,  # type: ignore[typeddict-item]
                    "priority": priority,
                    "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
                    "applicability_config": {"scope": {"price_type": "metered"}},
                }
            )
    return customer


_RATED_LOOKUP_KEYS = {"api_calls", "compute_minutes", "storage_gb_us_east", "storage_gb_eu_west"}


@pytest.fixture(scope="session")
def book(local_stack: LocalStack) -> Book:
    """One book per session: the seed's internal ids are the Metronome aliases, so a second seed would collide."""
    return seed_book(local_stack, customers=BOOK_CUSTOMERS, seed=7)


BOOK_CUSTOMERS = 30


class SimulatedCrash(BaseException):
    """Not an `Exception`: nothing records it, like a Lambda killed mid-step (its step stays RUNNING, leased)."""


class CrashAfter:
    """A port that dies right after the `occurrence`-th call of `method` has done its write (a Metronome target
    unless `writes` names other write methods); `writes` records every write made, in order."""

    def __init__(
        self, inner: Any, method: str | None = None, occurrence: int = 1, *, writes: Iterable[str] = WRITE_METHODS
    ) -> None:
        self._inner = inner
        self._writes = frozenset(writes)
        self._method = method
        self._left = occurrence
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._writes:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            self.writes.append(name)
            if name == self._method:
                self._left -= 1
                if self._left == 0:
                    raise SimulatedCrash(name)
            return result

        return call
