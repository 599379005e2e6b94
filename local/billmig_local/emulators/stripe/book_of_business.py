"""A deterministic, realistic Stripe book of business, created only through the official SDK.

The catalogue is `catalogue.STANDARD` translated to Stripe: one product per offering, one meter per (metered
offering, pricing-group value) with `offering.stripe_event_name(value)`, one metered price per meter (lookup key
`offering.stripe_lookup_key(value)`, per unit or graduated as the catalogue says), and a licensed monthly price per
plan (lookup key = plan key). Stripe also gets a meter and price for `UNRATED_REGION`, which the Metronome rate card
deliberately lacks (priced like the dearest region).

Every customer lives on its own test clock, started 12-100 days before the book's `as_of` time, so its history is
real: subscriptions started on past dates, usage sent (through the v2 meter event stream) while the clock walks
forward period by period, cycle (and threshold) invoices finalized with credits applied, some grants partly used or
expired. The clock ends at `as_of`; `billmig local clock` keeps it in step afterwards.

Deterministic: customer n draws from `random.Random(f"{seed}:{n}")`, so it is the same whatever the book size.
Idempotent: every write carries an `Idempotency-Key` derived from (seed, customer, step), and `as_of` is kept in the
catalogue's metadata, so a rerun sends the same requests and Stripe replays them (catalogue objects are looked up by
id, event name and lookup key first).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import stripe

from billmig_local.catalogue import STANDARD, UNRATED_REGION, Catalogue, MeteredOffering
from billmig_local.clock import to_rfc3339

from .billing_periods import boundary

DAY = 86400
AS_OF_KEY = "billmig_book_as_of"
SPECIAL_PROFILES = {
    1: "past_due",
    2: "trialing",
    3: "cancel_at_period_end",
    4: "unrated_region",
    5: "threshold",
    6: "mid_month_anchor",
}
"""Customers 1-6 are the awkward ones, so every book of seven or more customers has each of them.
`mid_month_anchor` bills on a day other than the 1st at 09:30 UTC (`billing_cycle_anchor_config`), so its
Stripe periods never line up with Metronome's FIRST_OF_MONTH statements."""


@dataclass(frozen=True)
class MeteredPrice:
    lookup_key: str
    price: str
    meter: str
    event_name: str
    offering: str
    pricing_group_value: str | None


@dataclass
class StripeCatalogue:
    as_of: int
    products: dict[str, str] = field(default_factory=dict)  # offering or plan key -> product id
    metered: dict[str, MeteredPrice] = field(default_factory=dict)  # lookup key -> price
    licensed: dict[str, str] = field(default_factory=dict)  # plan key -> price id
    unrated_lookup_key: str = ""

    def rated(self) -> list[MeteredPrice]:
        return [p for key, p in self.metered.items() if key != self.unrated_lookup_key]


@dataclass
class SeededCustomer:
    internal_customer_id: str
    customer: str
    test_clock: str
    subscription: str
    profile: str
    started_at: int
    prices: list[str]
    credit_grants: list[dict[str, Any]]
    meter_events: int
    requests: int


def _idem(key: str) -> stripe.RequestOptions:
    return {"idempotency_key": key}


def _missing(error: stripe.InvalidRequestError) -> bool:
    return error.http_status == 404


def _product(client: stripe.StripeClient, key: str, name: str, metadata: dict[str, str]) -> stripe.Product:
    product_id = f"prod_billmig_{key}"
    try:
        return client.v1.products.retrieve(product_id)
    except stripe.InvalidRequestError as error:
        if not _missing(error):
            raise
    return client.v1.products.create(
        params={"id": product_id, "name": name, "metadata": metadata}, options=_idem(f"billmig-seed:product:{key}")
    )


def _price_by_lookup_key(client: stripe.StripeClient, lookup_key: str) -> stripe.Price | None:
    found = client.v1.prices.list(params={"lookup_keys": [lookup_key], "limit": 1}).data
    return found[0] if found else None


def _metered_price_params(offering: MeteredOffering, value: str | None, product: str, meter: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "product": product,
        "currency": "usd",
        "lookup_key": offering.stripe_lookup_key(value),
        "nickname": offering.name + (f" ({value})" if value else ""),
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter},
        "metadata": {"offering": offering.key, "pricing_group_value": value or ""},
    }
    rates = {rate.pricing_group_value: rate for rate in offering.rates}
    rate = rates.get(value)
    if rate is None:  # the unrated region: Stripe still bills it, at the dearest rate
        params["unit_amount"] = max(r.unit_amount or 0 for r in offering.rates)
    elif rate.tiers:
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = "graduated"
        params["tiers"] = [
            {"up_to": "inf" if t.up_to is None else t.up_to, "unit_amount": t.unit_amount}
            | ({"flat_amount": t.flat_amount} if t.flat_amount else {})
            for t in rate.tiers
        ]
    else:
        params["unit_amount"] = rate.unit_amount
    return params


def ensure_catalogue(client: stripe.StripeClient, as_of: int, catalogue: Catalogue = STANDARD) -> StripeCatalogue:
    """The Stripe side of the catalogue, created where missing; `as_of` is the one recorded by the first run."""
    first = catalogue.metered[0]
    anchor = _product(client, first.key, first.name, {"offering": first.key, AS_OF_KEY: str(as_of)})
    recorded = anchor.metadata.to_dict().get(AS_OF_KEY) if anchor.metadata else None
    seeded = StripeCatalogue(as_of=int(recorded) if recorded else as_of)
    meters = {m.event_name: m for m in client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter()}
    for offering in catalogue.metered:
        product = _product(client, offering.key, offering.name, {"offering": offering.key})
        seeded.products[offering.key] = product.id
        values = [rate.pricing_group_value for rate in offering.rates]
        if offering.pricing_group_key == "region":
            values.append(UNRATED_REGION)
            seeded.unrated_lookup_key = offering.stripe_lookup_key(UNRATED_REGION)
        for value in values:
            event_name = offering.stripe_event_name(value)
            meter = meters.get(event_name)
            if meter is None or meter.status != "active":
                meter = client.v1.billing.meters.create(
                    params={
                        "display_name": offering.name + (f" ({value})" if value else ""),
                        "event_name": event_name,
                        "default_aggregation": {"formula": offering.aggregation},
                        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                        "value_settings": {"event_payload_key": "value"},
                    },
                    options=_idem(f"billmig-seed:meter:{event_name}"),
                )
            lookup_key = offering.stripe_lookup_key(value)
            price = _price_by_lookup_key(client, lookup_key)
            if price is None:
                price = client.v1.prices.create(
                    params=_metered_price_params(offering, value, product.id, meter.id),  # type: ignore[arg-type]
                    options=_idem(f"billmig-seed:price:{lookup_key}"),
                )
            seeded.metered[lookup_key] = MeteredPrice(lookup_key, price.id, meter.id, event_name, offering.key, value)
    for plan in catalogue.plans:
        product = _product(client, f"plan_{plan.key}", plan.name, {"plan": plan.key})
        seeded.products[plan.key] = product.id
        price = _price_by_lookup_key(client, plan.key)
        if price is None:
            price = client.v1.prices.create(
                params={
                    "product": product.id,
                    "currency": catalogue.currency,
                    "unit_amount": plan.monthly_amount,
                    "lookup_key": plan.key,
                    "nickname": plan.name,
                    "recurring": {"interval": "month", "usage_type": "licensed"},
                },
                options=_idem(f"billmig-seed:price:{plan.key}"),
            )
        seeded.licensed[plan.key] = price.id
    return seeded


# ---------------------------------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------------------------------
def _profile(n: int, rng: random.Random) -> str:
    if n in SPECIAL_PROFILES:
        return SPECIAL_PROFILES[n]
    roll = rng.random()
    if roll < 0.08:
        return "threshold"
    if roll < 0.10:
        return "heavy_api"
    if roll < 0.12:
        return "past_due"
    return "standard"


class MeterEventSession:
    """One v2 meter event session shared by the seeding threads, renewed well before its 15 minutes are up."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._token = ""
        self._created = 0.0

    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() - self._created > 600:
                self._token = self.client.v2.billing.meter_event_session.create().authentication_token
                self._created = time.monotonic()
            return self._token


class _Customer:
    """One customer's history, written in order; counts its requests and meter events."""

    def __init__(
        self, client: stripe.StripeClient, book: StripeCatalogue, seed: int, n: int, stream: MeterEventSession
    ) -> None:
        self.client = client
        self.stream = stream
        self.pending: list[dict[str, Any]] = []
        self.book = book
        self.n = n
        self.rng = random.Random(f"{seed}:{n}")
        self.internal = f"acct_{n + 1:06d}"
        self.prefix = f"billmig-seed:{seed}:{self.internal}"
        self.requests = 0
        self.events = 0
        self.clock_time = 0

    def key(self, step: str) -> stripe.RequestOptions:
        self.requests += 1
        return _idem(f"{self.prefix}:{step}")

    def advance(self, clock: str, instant: int) -> None:
        if instant > self.clock_time:
            self.client.v1.test_helpers.test_clocks.advance(
                clock, params={"frozen_time": instant}, options=self.key(f"advance:{instant}")
            )
            self.clock_time = instant

    def send(self, price: MeteredPrice, customer: str, value: int, at: int, tag: str) -> None:
        self.pending.append(
            {
                "event_name": price.event_name,
                "payload": {"stripe_customer_id": customer, "value": str(value)},
                "identifier": f"{self.prefix}:{price.event_name}:{tag}",
                "timestamp": to_rfc3339(at),
            }
        )
        self.events += 1

    def flush(self, step: str) -> None:
        """The pending events through the v2 meter event stream, 100 per request."""
        for start in range(0, len(self.pending), 100):
            batch = self.pending[start : start + 100]
            options = self.key(f"stream:{step}:{start}") | {"api_key": self.stream.token()}
            self.client.v2.billing.meter_event_stream.create(params={"events": batch}, options=options)  # type: ignore[typeddict-item]
        self.pending = []

    def build(self) -> SeededCustomer:
        rng = self.rng
        c = self.client.v1
        book = self.book
        profile = _profile(self.n, rng)
        # a past_due customer needs a finished period (its unpaid invoice); a trial must still be running
        days_back = {"trialing": 5, "past_due": rng.randint(40, 100)}.get(profile) or rng.randint(12, 100)
        started = (book.as_of - days_back * DAY) // 3600 * 3600
        self.clock_time = started
        clock = c.test_helpers.test_clocks.create(
            params={"frozen_time": started, "name": self.internal}, options=self.key("clock")
        ).id
        with_payment_method = profile != "past_due" and rng.random() < 0.95
        customer_params: dict[str, Any] = {
            "name": f"Customer {self.n + 1:06d}",
            "email": f"billing+{self.internal}@example.com",
            "metadata": {"internal_customer_id": self.internal},
            "test_clock": clock,
        }
        if with_payment_method:
            customer_params |= {
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }
        customer = c.customers.create(params=customer_params, options=self.key("customer")).id  # type: ignore[arg-type]

        prices = book.rated()
        if profile == "unrated_region":
            prices = [*prices, book.metered[book.unrated_lookup_key]]
        items: list[dict[str, Any]] = [{"price": p.price} for p in prices]
        licensed = rng.random() < 0.4
        if licensed:
            items += [{"price": price} for price in book.licensed.values()]
        sub_params: dict[str, Any] = {
            "customer": customer,
            "items": items,
            "metadata": {"internal_customer_id": self.internal},
        }
        if profile == "threshold":
            sub_params["billing_thresholds"] = {"amount_gte": rng.choice([10000, 20000])}
        if profile == "trialing":
            sub_params["trial_period_days"] = 14
        if profile == "mid_month_anchor":
            sub_params["billing_cycle_anchor_config"] = {"day_of_month": rng.randint(2, 28), "hour": 9, "minute": 30}
        created = c.subscriptions.create(params=sub_params, options=self.key("subscription"))  # type: ignore[arg-type]
        subscription = created.id
        grants = self._grants(customer, started)

        anchor = created.billing_cycle_anchor  # the trial's end, a configured day, or the start
        cuts = sorted({boundary(anchor, "month", 1, k) for k in range(5)} | {book.as_of + 1})
        cuts = [cut for cut in cuts if started < cut <= book.as_of + 1]
        segment_start = started
        for index, segment_end in enumerate(cuts):
            last = segment_end > book.as_of
            self.advance(clock, segment_end - 1)
            self._usage(customer, prices, profile, segment_start, segment_end - 1, index, heavy=last)
            self.flush(str(index))
            segment_start = segment_end
        self.advance(clock, book.as_of)
        if profile == "cancel_at_period_end":
            c.subscriptions.update(subscription, params={"cancel_at_period_end": True}, options=self.key("cancel"))
        return SeededCustomer(
            internal_customer_id=self.internal,
            customer=customer,
            test_clock=clock,
            subscription=subscription,
            profile=profile,
            started_at=started,
            prices=[p.lookup_key for p in prices] + (list(book.licensed) if licensed else []),
            credit_grants=grants,
            meter_events=self.events,
            requests=self.requests,
        )

    def _grants(self, customer: str, started: int) -> list[dict[str, Any]]:
        rng = self.rng
        made = []
        storage = [p.price for p in self.book.rated() if p.offering == "storage_gb"]
        for category, chance, values, priorities in (
            ("paid", 0.45, (2000, 30001, 500), (50, 50, 40)),
            ("promotional", 0.45, (500, 10001, 250), (10, 20, 50)),
        ):
            if rng.random() >= chance:
                continue
            value = rng.randrange(*values)
            params: dict[str, Any] = {
                "customer": customer,
                "name": f"{category} credit for {self.internal}",
                "category": category,
                "priority": rng.choice(priorities),
                "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
                "applicability_config": {"scope": {"price_type": "metered"}},
            }
            if rng.random() < 0.3:
                params["applicability_config"] = {"scope": {"prices": [{"id": p} for p in storage]}}
            if rng.random() < 0.3:
                params["expires_at"] = started + rng.randint(20, 130) * DAY
            grant = self.client.v1.billing.credit_grants.create(
                params=params,  # type: ignore[arg-type]
                options=self.key(f"grant:{category}"),
            )
            scope = "prices" if "prices" in params["applicability_config"]["scope"] else "metered"
            made.append(
                {"id": grant.id, "category": category, "value": value, "expires_at": grant.expires_at, "scope": scope}
            )
        return made

    def _usage(
        self, customer: str, prices: list[MeteredPrice], profile: str, start: int, end: int, index: int, *, heavy: bool
    ) -> None:
        rng = self.rng
        span = max(1, end - start)
        for price in prices:
            if price.offering == "api_calls":
                calls = rng.randint(1100, 1300) if heavy and profile == "heavy_api" else rng.randint(2, 12)
                for k in range(calls):
                    self.send(price, customer, 1, start + (k * span) // calls, f"{index}:{k}")
            elif price.offering == "compute_minutes":
                scale = 400 if profile == "threshold" else 60
                for k in range(2):
                    self.send(price, customer, rng.randint(1, scale), start + (k + 1) * span // 3, f"{index}:{k}")
            else:  # storage (last value in the period): one reading
                self.send(price, customer, rng.randint(5, 500), start + span // 2, f"{index}:0")


def populate(
    client: stripe.StripeClient,
    book: StripeCatalogue,
    *,
    customers: int,
    seed: int,
    workers: int = 1,
    progress: Callable[[SeededCustomer], None] | None = None,
) -> list[SeededCustomer]:
    """Customers 0..customers-1; with several workers their objects interleave (same book, other ids)."""

    stream = MeterEventSession(client)

    def one(n: int) -> SeededCustomer:
        built = _Customer(client, book, seed, n, stream).build()
        if progress is not None:
            progress(built)
        return built

    if workers <= 1:
        return [one(n) for n in range(customers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(customers)))


def counts(client: stripe.StripeClient, book: StripeCatalogue, seeded: list[SeededCustomer]) -> dict[str, int]:
    """Objects per type in the seeded book (invoices and transactions counted through the API)."""
    invoices: Counter[str] = Counter()
    for invoice in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter():
        invoices[str(invoice.billing_reason)] += 1
    return {
        "products": len(book.products),
        "billing meters": len(book.metered),
        "prices": len(book.metered) + len(book.licensed),
        "test clocks": len(seeded),
        "customers": len(seeded),
        "subscriptions": len(seeded),
        "credit grants": sum(len(s.credit_grants) for s in seeded),
        "meter events": sum(s.meter_events for s in seeded),
        **{f"invoices ({reason})": count for reason, count in sorted(invoices.items())},
    }


def manifest(book: StripeCatalogue, seeded: list[SeededCustomer], seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "as_of": book.as_of,
        "products": book.products,
        "metered_prices": {key: asdict(price) for key, price in book.metered.items()},
        "licensed_prices": book.licensed,
        "unrated_lookup_key": book.unrated_lookup_key,
        "customers": [asdict(s) for s in seeded],
    }
