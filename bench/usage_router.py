"""How fast does the usage router move events? 100,000 events through `UsageRouter` to both emulators.

The router runs as the Lambda does, one SQS batch of 100 at a time: Metronome ingest in calls of 100, the Stripe v2
meter event stream in requests of 100, both vendors at once. Each emulator answers after a 50 ms latency (the
`/_emulator/latency` control), so the figure is about round trips, not the emulators' speed. Several routers run
side by side, each in a process of its own like a Lambda instance, and the emulators in another, as the vendors are
elsewhere (`--in-one-process`: the routers as threads of one process with the emulators beside them, all sharing one
interpreter lock, as earlier runs did). Routes
come from memory (every customer in the parallel run): the progress-store lookup is cached per customer and is not
what limits a run. Each batch is also journaled (one page per customer, 50 in a batch here), written in memory after
the same 50 ms, standing in for S3's PutObject.

The bound: one router instance moves at most 100 events per round trip (100 / 0.05 s = 2,000 events/s), and Stripe's
stream takes at most 10,000 events/s (Metronome publishes no rate below its 100,000 events/s, only 100 per request).

Run: .venv/bin/python bench/usage_router.py [--events 100000] [--routers 4] [--latency-ms 50] [--in-one-process]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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


def serve_emulators(state: Path, connection: Any) -> None:
    """Both emulators in this (child) process until the bench says stop; their URLs go back first."""
    clock = WorldClock(state / "clock.json")
    stripe_emulator = start_stripe(clock=clock, state_dir=None)
    metronome_emulator = start_metronome(clock=clock, state_dir=None)
    connection.send((stripe_emulator.url, metronome_emulator.url))
    connection.recv()
    stripe_emulator.server.stop()
    metronome_emulator.server.stop()


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


@dataclass(frozen=True)
class Work:
    """What one router needs to route its share of the batches: every `routers`-th batch, from `index`."""

    stripe_url: str
    metronome_url: str
    routes: dict[str, str]  # internal id -> Stripe customer id
    events: int
    routers: int
    index: int
    latency_ms: float
    now: datetime


def batches_of(work: Work) -> list[list[QueuedEvent]]:
    names = list(work.routes)
    batches = []
    for start in range(work.index * BATCH, work.events, work.routers * BATCH):
        batch = []
        for i in range(start, min(start + BATCH, work.events)):
            body = {
                "event_id": f"e{i}",
                "customer_id": names[i % len(names)],
                "event_name": "compute_minutes",
                "timestamp": (work.now - timedelta(seconds=i % 86400 + 60)).isoformat(),
                "properties": {"minutes": 1 + i % 7},
            }
            batch.append(QueuedEvent(f"m{i}", json.dumps(body)))
        batches.append(batch)
    return batches


def router_for(work: Work, letters: CountingDeadLetters, journal: MemoryJournal) -> UsageRouter:
    config = UsageRouterConfig.model_validate_json((REPO / "events" / "usage" / "router.json").read_text())
    source = MemoryRoutes({k: CustomerRoute(k, v, PARALLEL_RUN) for k, v in work.routes.items()})
    return UsageRouter(
        config,
        RouteBook(source, source, ttl=600),
        StripeMeterEventSink.connect("sk_test_x", work.stripe_url),
        MetronomeIngestSink.connect("t", work.metronome_url),
        letters,
        journal,
    )


def route_all(router: UsageRouter, batches: list[list[QueuedEvent]]) -> int:
    return sum(len(router.route(batch).retry) for batch in batches)


def router_process(work: Work, ready: Any, go: Any, results: Any) -> None:
    """One router in a process of its own, as a Lambda instance is: built and warmed, then on the signal it routes
    its batches one after the other, as SQS hands a warm instance one batch at a time."""
    letters, journal = CountingDeadLetters(), MemoryJournal(work.latency_ms / 1000)
    router, batches = router_for(work, letters, journal), batches_of(work)
    ready.wait()
    go.wait()
    results.put((route_all(router, batches), len(letters.letters)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--routers", type=int, default=4)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--in-one-process", action="store_true", help="routers as threads of one process, the emulators beside them"
    )
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="usage-router-bench-"))
    clock = WorldClock(state / "clock.json")
    spawn = multiprocessing.get_context("spawn")
    stop: list[Callable[[], None]] = []
    if args.in_one_process:
        emulators = [start_stripe(clock=clock, state_dir=None), start_metronome(clock=clock, state_dir=None)]
        url, metronome_url = emulators[0].url, emulators[1].url
        stop = [emulator.server.stop for emulator in emulators]
    else:
        ours, theirs = spawn.Pipe()
        child = spawn.Process(target=serve_emulators, args=(state, theirs))
        child.start()
        url, metronome_url = ours.recv()
        stop = [lambda: ours.send("stop"), child.join]
    try:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": url, "meter_events": url})
        ensure_catalogue(client, int(clock.now()) // 3600 * 3600)
        metronome = Metronome(bearer_token="t", base_url=metronome_url)
        seed_catalogue(metronome)
        routes = {}
        for n in range(args.customers):
            internal = f"bench_{n:04d}"
            routes[internal] = client.v1.customers.create(params={"metadata": {"internal_customer_id": internal}}).id
            metronome.v1.customers.create(name=internal, ingest_aliases=[internal])
        for emulator_url in (url, metronome_url):
            httpx.post(f"{emulator_url}/_emulator/latency", json={"ms": args.latency_ms}).raise_for_status()

        works = [
            Work(url, metronome_url, routes, args.events, args.routers, k, args.latency_ms, clock.now_datetime())
            for k in range(args.routers)
        ]
        if args.in_one_process:
            letters, journal = CountingDeadLetters(), MemoryJournal(args.latency_ms / 1000)
            shares = [(router_for(work, letters, journal), batches_of(work)) for work in works]
            began = time.perf_counter()
            with ThreadPoolExecutor(args.routers) as pool:
                counts = [(n, 0) for n in pool.map(lambda share: route_all(*share), shares)]
            counts[0] = (counts[0][0], len(letters.letters))
        else:
            ready, go, results = spawn.Barrier(args.routers + 1), spawn.Event(), spawn.Queue()
            workers = [spawn.Process(target=router_process, args=(work, ready, go, results)) for work in works]
            for worker in workers:
                worker.start()
            ready.wait()
            began = time.perf_counter()
            go.set()
            counts = [results.get() for _ in workers]
        seconds = time.perf_counter() - began
        if not args.in_one_process:
            for worker in workers:
                worker.join()
        retried, dead = sum(n for n, _ in counts), sum(d for _, d in counts)
        rate = args.events / seconds
        where = "threads of one process, the emulators beside them" if args.in_one_process else "a process each"
        per_router = BATCH / (args.latency_ms / 1000)
        bound = min(STRIPE_STREAM_LIMIT, args.routers * per_router)
        print(
            f"{args.events} events in batches of {BATCH}, {args.routers} routers ({where}), "
            f"{args.latency_ms:.0f} ms per request: {seconds:.1f} s = {rate:,.0f} events/s "
            f"(retried {retried}, dead-lettered {dead})"
        )
        print(
            f"bound: min(Stripe stream {STRIPE_STREAM_LIMIT:,} events/s, {args.routers} routers x {BATCH} events / "
            f"{args.latency_ms:.0f} ms = {args.routers * per_router:,.0f} events/s) = "
            f"{bound:,.0f} events/s; measured {rate / bound:.0%} of it"
        )
    finally:
        for step in stop:
            step()


if __name__ == "__main__":
    main()
