"""How fast does the usage router move events? 100,000 events through `UsageRouter` to both emulators.

The router runs as the Lambda does, one SQS batch of 100 at a time: Metronome ingest in calls of 100, the Stripe v2
meter event stream in requests of 100, both vendors at once. Each emulator answers after a 50 ms latency (the
`/_emulator/latency` control), so the figure is about round trips, not the emulators' speed. Several routers run
side by side, like concurrent Lambda instances. Routes come from memory (every customer in the parallel run): the
progress-store lookup is cached per customer and is not what limits a run. Each batch is also journaled (one page
per customer, 50 in a batch here), written in memory after the same 50 ms, standing in for S3's PutObject.

The bound: one router instance moves at most 100 events per round trip (100 / 0.05 s = 2,000 events/s), and Stripe's
stream takes at most 10,000 events/s (Metronome publishes no rate below its 100,000 events/s, only 100 per request).

Run: .venv/bin/python bench/usage_router.py [--events 100000] [--routers 4] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import stripe
from billmig.adapters.metronome_ingest import MetronomeIngestSink
from billmig.adapters.stripe_meter_events import StripeMeterEventSink
from billmig.usage.journal import JournalEntry, JournalPage
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.ports import DeadLetter
from billmig.usage.router import QueuedEvent, UsageRouter
from billmig.usage.routing import PARALLEL_RUN, CustomerRoute, RouteBook
from billmig_local.clock import WorldClock
from billmig_local.emulators.metronome import start as start_metronome
from billmig_local.emulators.metronome.catalogue_seed import seed_catalogue
from billmig_local.emulators.stripe import start as start_stripe
from billmig_local.emulators.stripe.book_of_business import ensure_catalogue
from metronome import Metronome

REPO = Path(__file__).resolve().parents[1]
STRIPE_STREAM_LIMIT = 10_000  # events/s, https://docs.stripe.com/rate-limits
BATCH = 100


class MemoryRoutes:
    def __init__(self, routes: dict[str, CustomerRoute]) -> None:
        self.routes = routes

    def route_of(self, internal_id: str) -> CustomerRoute | None:
        return self.routes.get(internal_id)

    def stripe_customer_for(self, internal_id: str) -> str | None:
        return None


class MemoryJournal:
    """The journal's pages kept in memory, each write answered after the same per-request latency as the vendors
    (S3 on AWS: one PutObject per customer per batch), its body serialised as the S3 adapter does."""

    def __init__(self, latency_seconds: float) -> None:
        self.latency_seconds = latency_seconds
        self.pages: dict[str, JournalPage] = {}
        self.bytes = 0

    def record(self, page: JournalPage) -> None:
        self.pages[f"{page.internal_id}/{page.page_id}"] = page
        self.bytes += len(page.body())  # what the S3 adapter serialises
        time.sleep(self.latency_seconds)

    def read(self, internal_id: str, since: object, until: object) -> list[JournalEntry]:
        return [e for p in self.pages.values() if p.internal_id == internal_id for e in p.entries]


class CountingDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def dead_letter(self, letters: list[DeadLetter]) -> set[str]:
        self.letters.extend(letters)
        return set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--routers", type=int, default=4)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="usage-router-bench-"))
    clock = WorldClock(state / "clock.json")
    stripe_emulator = start_stripe(clock=clock, state_dir=None)
    metronome_emulator = start_metronome(clock=clock, state_dir=None)
    try:
        url = stripe_emulator.url
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": url, "meter_events": url})
        ensure_catalogue(client, int(clock.now()) // 3600 * 3600)
        metronome = Metronome(bearer_token="t", base_url=metronome_emulator.url)
        seed_catalogue(metronome)
        routes = {}
        for n in range(args.customers):
            internal = f"bench_{n:04d}"
            stripe_id = client.v1.customers.create(params={"metadata": {"internal_customer_id": internal}}).id
            metronome.v1.customers.create(name=internal, ingest_aliases=[internal])
            routes[internal] = CustomerRoute(internal, stripe_id, PARALLEL_RUN)
        for emulator in (stripe_emulator, metronome_emulator):
            httpx.post(f"{emulator.url}/_emulator/latency", json={"ms": args.latency_ms}).raise_for_status()

        config = UsageRouterConfig.model_validate_json((REPO / "events" / "usage" / "router.json").read_text())
        source = MemoryRoutes(routes)
        letters = CountingDeadLetters()
        journal = MemoryJournal(args.latency_ms / 1000)
        now = clock.now_datetime()
        names = list(routes)
        bodies = [
            json.dumps(
                {
                    "event_id": f"e{i}",
                    "customer_id": names[i % len(names)],
                    "event_name": "compute_minutes",
                    "timestamp": (now - timedelta(seconds=i % 86400 + 60)).isoformat(),
                    "properties": {"minutes": 1 + i % 7},
                }
            )
            for i in range(args.events)
        ]
        batches = [
            [QueuedEvent(f"m{start + j}", body) for j, body in enumerate(bodies[start : start + BATCH])]
            for start in range(0, len(bodies), BATCH)
        ]

        def router() -> UsageRouter:
            return UsageRouter(
                config,
                RouteBook(source, source, ttl=600),
                StripeMeterEventSink.connect("sk_test_x", url),
                MetronomeIngestSink.connect("t", metronome_emulator.url),
                letters,
                journal,
            )

        instances = [router() for _ in range(args.routers)]
        retried = 0
        began = time.perf_counter()

        def run(index: int) -> int:
            instance = instances[index % len(instances)]
            return len(instance.route(batches[index]).retry)

        with ThreadPoolExecutor(args.routers) as pool:
            for n in pool.map(run, range(len(batches))):
                retried += n
        seconds = time.perf_counter() - began
        rate = args.events / seconds
        bound = min(STRIPE_STREAM_LIMIT, args.routers * BATCH / (args.latency_ms / 1000))
        print(
            f"{args.events} events, {len(batches)} batches of {BATCH}, {args.routers} routers, "
            f"{args.latency_ms:.0f} ms per request: {seconds:.1f} s = {rate:,.0f} events/s "
            f"(retried {retried}, dead-lettered {len(letters.letters)})"
        )
        print(
            f"bound: min(Stripe stream {STRIPE_STREAM_LIMIT:,} events/s, {args.routers} routers x {BATCH} events / "
            f"{args.latency_ms:.0f} ms = {args.routers * BATCH / (args.latency_ms / 1000):,.0f} events/s) = "
            f"{bound:,.0f} events/s; measured {rate / bound:.0%} of it"
        )
    finally:
        stripe_emulator.server.stop()
        metronome_emulator.server.stop()


if __name__ == "__main__":
    main()
